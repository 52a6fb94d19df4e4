#!/usr/bin/env bash
# Runs a command inside a private network + mount namespace with the
# loopback sshd of bench/loopback.sh up: `bench/in-netns.sh CMD...`, e.g.
#   bench/in-netns.sh bash -c '. bench/lib.sh; . bench/loopback.sh; inv=$(loop_inventory 10); ...'
# Re-executes itself under `unshare -mn`; the sshd, the bashrc mount and the
# namespace end with the command.
set -euo pipefail
if [ "${DTB_IN_NETNS:-}" != 1 ]; then
    exec env DTB_IN_NETNS=1 unshare --mount --net --propagation private "$0" "$@"
fi
# one state dir per namespace, so that runs side by side do not collide
export LOOP_STATE=${LOOP_STATE:-/run/dtb-bench.$$}
. "$(dirname "$0")/lib.sh"
. "$BENCH_DIR/loopback.sh"
loop_sshd_up
trap loop_sshd_down EXIT
"$@"
