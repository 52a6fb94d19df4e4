#!/usr/bin/env bash
# Runs every benchmark of issue 7 and writes bench/RESULTS.md:
#   W1 on 10 loopback hosts and on 10 container hosts (drover, pyinfra,
#   ansible-playbook with pipelining, ansible-playbook defaults), and
#   W2 (drover over 10 / 100 / 1,000 loopback hosts, peers up to 100).
# Env knobs: R (runs per W1 cell, 3), R_ANSIBLE (runs per ansible W1 cell,
# R), W2_SIZES, W2_R, W2_PEER_MAX (see bench/loop-suite.sh), SKIP_CONTAINERS=1.
# Needs root (namespaces, docker). Not a test: CI never runs it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
bench_setup
LOG_DIR=$(mktemp -d /tmp/dtb-logs.XXXX); export LOG_DIR RAW=$LOG_DIR/raw
: >"$RAW"
out=$BENCH_DIR/RESULTS.md
body=$LOG_DIR/body.md
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load0=$(loadavg)
bench/in-netns.sh bash bench/loop-suite.sh >"$body"
if [ "${SKIP_CONTAINERS:-}" != 1 ]; then
    echo >>"$body"
    bench/w1.sh 10 "${R:-3}" >>"$body"
fi
{
    echo "# Benchmark results (bench/run.sh)"
    echo
    echo "Run $started – $(date -u '+%H:%M UTC'). $(machine_info)."
    echo "Load average at start: $load0 (1, 5, 15 min); each row gives the load"
    echo "when it started. The machine is shared with other builds, so absolute"
    echo "times are inflated for every tool; compare ratios (same moment, same load)."
    echo
    echo "Tools: $(tool_versions). drover release build; ansible with"
    echo "forks=50 (every host at once), its default ssh_args (ControlMaster=auto,"
    echo "ControlPersist=60s); 'ansible-pipelining' adds pipelining=True. pyinfra"
    echo "with --parallel 50 and -y. Every tool verifies host keys"
    echo "(StrictHostKeyChecking=yes / strict policy) against a generated known_hosts."
    echo
    echo "Each cell: median (min–max) wall time. Every timed run starts from cold"
    echo "connections (ControlPersist masters closed) and checks its counts:"
    echo "ok=20 changed=20 per host on the first run, ok=20 changed=0 on the no-op"
    echo "run (pyinfra: its grand total). 'tree' hashes what each host holds"
    echo "(paths, modes, contents with the host name and root normalised; '!' if"
    echo "hosts differ): equal hashes mean the tools left the same files."
    echo "Peak RSS is /usr/bin/time's maximum resident set of the largest process"
    echo "of the tool (ansible forks a worker per host; that is one worker, not the sum)."
    echo "Open fds: the tool's main process, sampled every 50 ms."
    echo
    cat "$body"
    echo
    echo "## Ratios"
    echo
    python3 "$BENCH_DIR/ratios.py" "$RAW"
} >"$out"
echo "wrote $out (logs in $LOG_DIR)"
