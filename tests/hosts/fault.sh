#!/bin/bash
# Injects faults into one drover test host (a container of cluster.sh).
#   fault.sh stop C          docker stop (SIGTERM, then SIGKILL after 2 s)
#   fault.sh start C         start a stopped/killed host again (a "reboot":
#                            same host keys, enabled services come back)
#   fault.sh kill C          docker kill (SIGKILL, TCP peers see nothing: no FIN)
#   fault.sh pause C         freeze every process (connections hang, no RST)
#   fault.sh unpause C
#   fault.sh disconnect C    detach from the cluster network (packets blackholed)
#   fault.sh connect C       re-attach with the same address
#   fault.sh restart-sshd C  `service ssh restart` inside (existing sessions live on)
#   fault.sh stop-sshd C     stop sshd only (connection refused); start-sshd C
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

[ $# = 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
action=$1 c=$2
docker inspect "$c" >/dev/null 2>&1 || die "no such container: $c"
prefix=$(docker inspect -f '{{index .Config.Labels "drover.cluster"}}' "$c")
[ -n "$prefix" ] || die "$c is not a drover test host"
net="$prefix-net"

address_of() {
    awk -v c="$1" '$1 == c {print $2}' "$STATE_DIR/$prefix/hosts"
}

case "$action" in
    stop) docker stop -t 2 "$c" >/dev/null ;;
    start)
        docker start "$c" >/dev/null
        ip=$(address_of "$c")
        for _ in $(seq 1 300); do
            timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22" 2>/dev/null && break
            sleep 0.1
        done ;;
    kill) docker kill "$c" >/dev/null ;;
    pause) docker pause "$c" >/dev/null ;;
    unpause) docker unpause "$c" >/dev/null ;;
    disconnect) docker network disconnect "$net" "$c" ;;
    connect)
        ip=$(address_of "$c")
        [ -n "$ip" ] || die "no address recorded for $c"
        docker network connect --ip "$ip" "$net" "$c" ;;
    restart-sshd) docker exec "$c" service ssh restart >/dev/null ;;
    stop-sshd) docker exec "$c" service ssh stop >/dev/null ;;
    start-sshd) docker exec "$c" service ssh start >/dev/null ;;
    *) die "unknown fault '$action'" ;;
esac
log "$action $c: done"
