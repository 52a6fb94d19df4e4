#!/usr/bin/env bash
# Workload W1 side by side: the same playbook (bench/w1/site.yml, 20 tasks)
# under drover and ansible-playbook (defaults, and pipelining + ControlPersist)
# against N container test hosts with strict host key checking. First run
# (after wiping the target dir) and no-op run, R times each; medians, min-max,
# and a check that every tool left the same files. A benchmark: nothing asserted in CI.
# Usage: bench/w1.sh [N=10] [R=3]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10} r=${2:-3}
name=w1b
cargo build --release -q
[ -x .venv/bin/ansible-playbook ] || { python3 -m venv .venv && .venv/bin/pip install -q ansible-core; }
bash tests/hosts/cluster.sh up "$n" --name "$name" >/dev/null
trap 'bash tests/hosts/cluster.sh down --name "$name" >/dev/null 2>&1 || true' EXIT
st="tests/hosts/.state/$name"
inv="$st/inventory.ini"
hosts=$(awk '/^\[testhosts\]/{f=1;next} /^\[/{f=0} f && NF {print $1}' "$inv")
wipe() { for h in $hosts; do docker exec "$h" rm -rf /srv/w1; done; }
tree() { for h in $hosts; do docker exec "$h" sh -c 'cd /srv/w1 && find . -type f -o -type d | sort | xargs -r stat -c "%n %a" && find . -type f | sort | xargs -r sha256sum' ; done | sha256sum | cut -c1-16; }
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_NOCOLOR=1 ANSIBLE_FORKS=50
run_tool() { # tool → seconds
  local s e
  s=$(date +%s%N)
  case "$1" in
    drover) ./target/release/drover run bench/w1/site.yml -i "$inv" >/dev/null ;;
    ansible) ANSIBLE_PIPELINING=False .venv/bin/ansible-playbook -i "$inv" bench/w1/site.yml >/dev/null ;;
    ansible-pipelining) ANSIBLE_PIPELINING=True ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s" .venv/bin/ansible-playbook -i "$inv" bench/w1/site.yml >/dev/null ;;
  esac
  e=$(date +%s%N)
  echo "$(( (e - s) / 1000000 ))"
}
stats() { sort -n | python3 -c "import sys; t=[int(x)/1000 for x in sys.stdin]; print(f'{t[len(t)//2]:.2f}s ({t[0]:.2f}-{t[-1]:.2f})')"; }
echo "| tool | first run | no-op run | tree |"
echo "|---|---|---|---|"
for tool in drover ansible-pipelining ansible; do
  first=() noop=()
  for _ in $(seq 1 "$r"); do
    wipe
    first+=("$(run_tool "$tool")")
    noop+=("$(run_tool "$tool")")
  done
  echo "| $tool | $(printf '%s\n' "${first[@]}" | stats) | $(printf '%s\n' "${noop[@]}" | stats) | $(tree) |"
done
echo
echo "hosts=$n tasks=20 runs=$r machine: $(nproc) cores, $(uname -r)"
