#!/usr/bin/env bash
# Workload W1 on N container test hosts (tests/hosts/cluster.sh: real sshd
# per host on a docker bridge, strict host keys): the same playbook under
# drover and ansible-playbook, and bench/w1/deploy.py under pyinfra. First
# run (after wiping /srv/w1) and no-op run, R times each; prints markdown rows.
# A benchmark: nothing asserted in CI. Usage: bench/w1.sh [N=10] [R=3]
# (bench/run.sh runs it; TOOLS picks the tools.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
n=${1:-10} r=${2:-3} name=dtb
TOOLS=${TOOLS:-"drover pyinfra ansible-pipelining ansible"}
[ -n "${LOG_DIR:-}" ] || { LOG_DIR=$(mktemp -d /tmp/dtb-logs.XXXX); export LOG_DIR RAW=$LOG_DIR/raw; }
bench_setup
bash tests/hosts/cluster.sh up "$n" --name "$name" >/dev/null
trap 'bash tests/hosts/cluster.sh down --name "$name" >/dev/null 2>&1 || true' EXIT
st="tests/hosts/.state/$name"
INV="$LOG_DIR/inv-containers"
mkdir -p "$INV"
awk '{print $1" "$2" /srv/w1"}' "$st/hosts" >"$INV/hosts"
# the cluster's inventory plus each host's target directory
sed 's|^\('"$name"'[0-9]* .*\)$|\1 root=/srv/w1|' "$st/inventory.ini" >"$INV/drover.ini"
key=$(awk '/^'"$name"'1 /{for(i=1;i<=NF;i++) if ($i ~ /^ansible_ssh_private_key_file=/) {sub(/^[^=]*=/, "", $i); print $i}}' "$st/inventory.ini")
cp "$st/known_hosts" "$INV/known_hosts"
. "$BENCH_DIR/loopback.sh"
write_pyinfra_inventory "$INV" "$key"
export INV
wipe() { while read -r h _ _; do docker exec "$h" rm -rf /srv/w1; done <"$INV/hosts"; }
export WIPE=wipe TREE="python3 $BENCH_DIR/tree.py --docker $INV"
echo "### W1 — $n container hosts × 20 tasks, $r rounds (ansible: ${R_ANSIBLE:-$r})"
echo
echo "| tool | first run | no-op run | controller peak RSS | controller CPU, first run | target CPU | tree | load avg at start |"
echo "|---|---|---|---|---|---|---|---|"
run_w1 w1-containers "$r" "$n"
