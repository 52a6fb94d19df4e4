# Shared by the benchmark scripts (sourced, not run). A benchmark harness,
# never a test: nothing here is run by CI.
#
# The inventory directory of a workload ($INV) holds the same hosts for the
# three tools: drover.ini (also ansible-playbook's), pyinfra_inv.py, and
# `hosts` (name, address, target directory per line, for checks).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
DROVER=${DROVER:-$REPO_DIR/target/release/drover}
ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-$REPO_DIR/.venv/bin/ansible-playbook}
PYINFRA=${PYINFRA:-$BENCH_DIR/.venv-pyinfra/bin/pyinfra}

# Install the peers (PyPI, each in its own venv) and build drover.
bench_setup() {
    (cd "$REPO_DIR" && cargo build --release -q)
    [ -x "$ANSIBLE_PLAYBOOK" ] || { python3 -m venv "$REPO_DIR/.venv" && "$REPO_DIR/.venv/bin/pip" install -q ansible-core; }
    [ -x "$PYINFRA" ] || { python3 -m venv "$BENCH_DIR/.venv-pyinfra" && "$BENCH_DIR/.venv-pyinfra/bin/pip" install -q pyinfra; }
    [ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
}

tool_versions() {
    echo "drover $(git -C "$REPO_DIR" rev-parse --short HEAD)$(git -C "$REPO_DIR" diff --quiet || echo +dirty)," \
        "$("$REPO_DIR/.venv/bin/ansible" --version 2>/dev/null | sed -n 1p)," \
        "pyinfra $("$PYINFRA" --version | awk '{print $2}')"
}

machine_info() {
    local cpu
    cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
    echo "CPU: $cpu; $(nproc) cores; $(awk '/MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo); kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Environment common to every ansible-playbook run (strict host keys come
# from the inventory's ansible_ssh_common_args).
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False
export PYINFRA_PROGRESS=off

# The command line of one tool against $INV. $1: drover | ansible |
# ansible-pipelining | pyinfra. Extra drover flags in $DROVER_FLAGS.
tool_cmd() {
    case "$1" in
        drover) echo "$DROVER run $BENCH_DIR/w1/site.yml -i $INV/drover.ini --json ${DROVER_FLAGS:-}" ;;
        # ansible-core's default ssh_args already hold ControlMaster=auto
        # ControlPersist=60s; masters live in $INV/cp (closed by cold_start).
        ansible) echo "env ANSIBLE_PIPELINING=False ANSIBLE_FORKS=${FORKS:-50} ANSIBLE_SSH_CONTROL_PATH_DIR=$INV/cp $ANSIBLE_PLAYBOOK -i $INV/drover.ini $BENCH_DIR/w1/site.yml" ;;
        ansible-pipelining) echo "env ANSIBLE_PIPELINING=True ANSIBLE_FORKS=${FORKS:-50} ANSIBLE_SSH_CONTROL_PATH_DIR=$INV/cp $ANSIBLE_PLAYBOOK -i $INV/drover.ini $BENCH_DIR/w1/site.yml" ;;
        pyinfra) echo "$PYINFRA -y --parallel ${FORKS:-50} $INV/pyinfra_inv.py $BENCH_DIR/w1/deploy.py" ;;
    esac
}

# Check one run's counts: $1 tool, $2 output file, $3 hosts, $4 expected
# changed per host. Every host must report ok=20 (20 tasks), that many
# changed, and nothing failed or unreachable. Exits on a mismatch.
check_counts() {
    python3 - "$@" <<'EOF'
import json, re, sys
tool, out, n, changed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(out, errors="replace").read()
rec = {}
if tool == "drover":
    last = [l for l in text.splitlines() if l.startswith('{"recap"')][-1]
    for h, r in json.loads(last)["recap"].items():
        rec[h] = (r["ok"], r["changed"], r["failed"] + r["unreachable"])
elif tool.startswith("ansible"):
    for m in re.finditer(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text, re.M):
        rec[m[1]] = (int(m[2]), int(m[3]), int(m[4]) + int(m[5]))
elif tool == "pyinfra":
    # pyinfra prints totals per operation, not per host: check the grand
    # total (operations, changed, errors, unchanged) against n hosts.
    m = re.search(r"^\s*Grand total\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s*$", text, re.M)
    num = lambda x: 0 if x == "-" else int(x)
    if m and (int(m[1]), num(m[2]), num(m[3]), num(m[4])) == (20 * n, changed * n, 0, (20 - changed) * n):
        rec = {f"host{i}": (20, changed, 0) for i in range(n)}
    else:
        sys.exit(f"pyinfra: expected Grand total {20 * n} ops, {changed * n} changed, 0 errors; got {m and m.group(0)!r} (output: {out})")
bad = {h: r for h, r in rec.items() if r != (20, changed, 0)}
if len(rec) != n or bad:
    sys.exit(f"{tool}: expected {n} hosts with ok=20 changed={changed} failed=0, got {len(rec)} hosts; wrong: {dict(list(bad.items())[:5])} (output: {out})")
EOF
}

# CPU ticks (1/100 s) used so far by the children the loopback sshd has
# reaped (its sessions, shells and commands): the target side's CPU. 0 when
# the hosts are not loopback ones.
target_ticks() {
    local f="${LOOP_STATE:-/nonexistent}/sshd.pid"
    [ -s "$f" ] && awk '{print $16 + $17}' /proc/"$(cat "$f")"/stat || echo 0
}

# Run a command under /usr/bin/time -v, sampling its open file descriptors.
# Prints "wall_ms maxrss_kb max_fds controller_cpu_ms target_cpu_ms".
# stdout+stderr of the command go to $1.
measure() {
    local out=$1; shift
    local tv="$out.time" s e pid fds=0 n t0
    t0=$(target_ticks)
    s=$(date +%s%N)
    /usr/bin/time -v -o "$tv" "$@" >"$out" 2>&1 &
    pid=$!
    # the tool is time's child; count its fds every 50 ms
    while kill -0 "$pid" 2>/dev/null; do
        for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
            n=$(ls /proc/"$c"/fd 2>/dev/null | wc -l)
            [ "$n" -gt "$fds" ] && fds=$n
        done
        sleep 0.05
    done
    wait "$pid" || true
    e=$(date +%s%N)
    # sshd reaps a connection's processes just after the client hangs up
    # (for ansible: after its ControlPersist masters are closed)
    if [ "$t0" != 0 ]; then cold_start; sleep 1; fi
    echo "$(( (e - s) / 1000000 )) $(awk -F': ' '/Maximum resident/{print $2}' "$tv")" \
        "$fds $(awk -F': ' '/User time|System time/{t += $2} END {printf "%d", t * 1000}' "$tv")" \
        "$(( ($(target_ticks) - t0) * 10 ))"
}

# median (min-max) of numbers on stdin, divided by $1 (default 1000: ms → s), with unit $2
stats() {
    python3 -c "
import sys
d, unit = float(sys.argv[1]), sys.argv[2]
t = sorted(float(x) / d for x in sys.stdin.read().split())
m = t[len(t) // 2] if len(t) % 2 else (t[len(t) // 2 - 1] + t[len(t) // 2]) / 2
f = (lambda v: f'{v:.2f}') if unit == 's' else (lambda v: f'{v:.0f}')
print(f'{f(m)}{unit} ({f(t[0])}–{f(t[-1])})' if len(t) > 1 else f'{f(m)}{unit}')
" "${1:-1000}" "${2:-s}"
}

median() {
    python3 -c "
import sys
t = sorted(float(x) for x in sys.stdin.read().split())
print(t[len(t) // 2] if len(t) % 2 else (t[len(t) // 2 - 1] + t[len(t) // 2]) / 2)"
}

# Cold connections for every timed run: close ControlPersist masters left
# by an earlier ansible-pipelining run.
cold_start() {
    local s
    for s in "$INV"/cp/*; do
        [ -S "$s" ] && ssh -o ControlPath="$s" -O exit bench >/dev/null 2>&1 || true
        rm -f "$s"
    done
}

# W1 on the hosts of $INV: R rounds; in each, every tool of $TOOLS in turn
# (so that they share the machine's load): wipe (the function named by
# $WIPE), first run (20 changes per host), no-op run (0); every run's counts
# are checked. Prints one markdown row per tool and appends
# "LABEL tool first|noop median_s" lines to $RAW. $1 label, $2 R, $3 N.
# ansible runs R_ANSIBLE rounds (default R).
run_w1() {
    local label=$1 r=$2 n=$3 tool i m k
    declare -A first noop rss cpu tcpu la tree
    for i in $(seq 1 "$r"); do
        for tool in $TOOLS; do
            case "$tool" in ansible*) [ "$i" -le "${R_ANSIBLE:-$r}" ] || continue ;; esac
            la[$tool]=${la[$tool]:-$(loadavg)}
            for k in first noop; do
                if [ $k = first ]; then $WIPE; fi
                cold_start
                m=($(measure "$LOG_DIR/$label-$tool-$k-$i.out" $(tool_cmd "$tool")))
                check_counts "$tool" "$LOG_DIR/$label-$tool-$k-$i.out" "$n" "$([ $k = first ] && echo 20 || echo 0)"
                if [ $k = first ]; then first[$tool]+=" ${m[0]}"; cpu[$tool]+=" ${m[3]}"; tcpu[$tool]+=" ${m[4]}"; else noop[$tool]+=" ${m[0]}"; fi
                rss[$tool]+=" ${m[1]}"
            done
            tree[$tool]=$($TREE) # what this tool left (each round overwrites)
        done
    done
    for tool in $TOOLS; do
        echo "$label $tool first $(echo ${first[$tool]} | median)" >>"$RAW"
        echo "$label $tool noop $(echo ${noop[$tool]} | median)" >>"$RAW"
        echo "| $tool | $(echo ${first[$tool]} | stats) | $(echo ${noop[$tool]} | stats) | $(echo ${rss[$tool]} | stats 1024 MB) | $(echo ${cpu[$tool]} | stats) | $(if [ -s "${LOOP_STATE:-/nonexistent}/sshd.pid" ]; then echo ${tcpu[$tool]} | stats; else echo n/a; fi) | ${tree[$tool]} | ${la[$tool]} |"
    done
}

# W2 row: tool $2 on the $3 hosts of $INV, R=$4 times (first + no-op run),
# checked counts; wall time, controller peak RSS and CPU, open fds (of the
# tool's main process), target-side CPU. Appends "LABEL tool first|noop
# median_s n" to $RAW.
run_w2() {
    local label=$1 tool=$2 n=$3 r=$4 i m first=() noop=() rss=() fds=() cpu=() tcpu=() la
    la=$(loadavg)
    for i in $(seq 1 "$r"); do
        $WIPE
        cold_start
        m=($(measure "$LOG_DIR/$label-$tool-$n-first-$i.out" $(tool_cmd "$tool")))
        check_counts "$tool" "$LOG_DIR/$label-$tool-$n-first-$i.out" "$n" 20
        first+=("${m[0]}") rss+=("${m[1]}") fds+=("${m[2]}") cpu+=("${m[3]}") tcpu+=("${m[4]}")
        cold_start
        m=($(measure "$LOG_DIR/$label-$tool-$n-noop-$i.out" $(tool_cmd "$tool")))
        check_counts "$tool" "$LOG_DIR/$label-$tool-$n-noop-$i.out" "$n" 0
        noop+=("${m[0]}") rss+=("${m[1]}") fds+=("${m[2]}")
    done
    echo "$label $tool first $(printf '%s\n' "${first[@]}" | median) $n" >>"$RAW"
    echo "$label $tool noop $(printf '%s\n' "${noop[@]}" | median) $n" >>"$RAW"
    echo "| $tool | $n | $(printf '%s\n' "${first[@]}" | stats) | $(printf '%s\n' "${noop[@]}" | stats) | $(printf '%s\n' "${rss[@]}" | stats 1024 MB) | $(printf '%s\n' "${fds[@]}" | sort -n | tail -1) | $(printf '%s\n' "${cpu[@]}" | stats) | $(printf '%s\n' "${tcpu[@]}" | stats) | $($TREE) | $la |"
}
