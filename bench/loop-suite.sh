#!/usr/bin/env bash
# W1 and W2 on loopback hosts (run by bench/run.sh through bench/in-netns.sh;
# prints markdown). Env: R (runs per W1 cell, 3), W2_SIZES ("10 100 1000"),
# W2_R (drover runs per W2 size, 3), W2_PEERS (peers in W2, "pyinfra
# ansible-pipelining"), W2_PEER_MAX (largest host count for them, 100),
# TOOLS (W1 tools), SKIP_W1=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$BENCH_DIR/loopback.sh"
R=${R:-3} W2_R=${W2_R:-3} W2_SIZES=${W2_SIZES:-"10 100 1000"} W2_PEER_MAX=${W2_PEER_MAX:-100}
W2_PEERS=${W2_PEERS-"pyinfra ansible-pipelining"}
TOOLS=${TOOLS:-"drover pyinfra ansible-pipelining ansible"}
export WIPE=loop_wipe

if [ "${SKIP_W1:-}" != 1 ]; then
    INV=$(loop_inventory 10); export INV TREE="loop_tree $INV"
    echo "### W1 — 10 loopback hosts × 20 tasks, $R rounds (ansible: ${R_ANSIBLE:-$R})"
    echo
    echo "| tool | first run | no-op run | controller peak RSS | controller CPU, first run | target CPU, first run | tree | load avg at start |"
    echo "|---|---|---|---|---|---|---|---|"
    run_w1 w1-loop "$R" 10
    echo
fi
echo "### W2 — 10 / 100 / 1,000 loopback hosts × 20 tasks"
echo
echo "| tool | hosts | first run | no-op run | controller peak RSS | max open fds | controller CPU, first run | target CPU, first run | tree | load avg at start |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in $W2_SIZES; do
    INV=$(loop_inventory "$n"); export INV TREE="loop_tree $INV"
    run_w2 w2 drover "$n" "$W2_R"
    for tool in $W2_PEERS; do
        if [ "$n" -le "$W2_PEER_MAX" ]; then run_w2 w2 "$tool" "$n" 1; fi
    done
    loop_wipe
done
