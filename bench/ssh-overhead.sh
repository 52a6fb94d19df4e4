#!/usr/bin/env bash
# Per-task overhead of drover over SSH (a benchmark, not a test): N container
# hosts × M trivial tasks (`command: "true"`, no facts), run R times from cold
# connections; prints the median and min–max wall time and the time per
# (task, host). Usage: bench/ssh-overhead.sh [N=3] [M=20] [R=5]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3} m=${2:-20} r=${3:-5}
name=bench
cargo build --release -q
bash tests/hosts/cluster.sh up "$n" --name "$name" >/dev/null
trap 'bash tests/hosts/cluster.sh down --name "$name" >/dev/null 2>&1 || true' EXIT
inv="tests/hosts/.state/$name/inventory.ini"
pb=$(mktemp --suffix=.yml)
{
  echo "- hosts: testhosts"
  echo "  gather_facts: false"
  echo "  tasks:"
  for i in $(seq 1 "$m"); do
    printf '    - name: t%s\n      command: "true"\n      changed_when: false\n' "$i"
  done
} >"$pb"
times=()
for _ in $(seq 1 "$r"); do
  s=$(date +%s%N)
  out=$(./target/release/drover run "$pb" -i "$inv" --json)
  e=$(date +%s%N)
  # every timed run checks its counts
  echo "$out" | tail -1 | python3 -c "import json,sys; r=json.load(sys.stdin)['recap']; assert len(r)==$n and all(v['ok']==$m and v['failed']==0 for v in r.values()), r"
  times+=("$(( (e - s) / 1000000 ))")
done
printf '%s\n' "${times[@]}" | sort -n | python3 -c "
import sys; t=[float(x)/1000 for x in sys.stdin]; med=t[len(t)//2]
print(f'hosts=$n tasks=$m runs=$r  median {med:.3f}s (min {t[0]:.3f}s, max {t[-1]:.3f}s)')
print(f'per task per host: {med/($n*$m)*1000:.2f} ms; per task (hosts in parallel): {med/$m*1000:.2f} ms')"
rm -f "$pb"
