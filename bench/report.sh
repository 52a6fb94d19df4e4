#!/usr/bin/env bash
# Writes bench/RESULTS.md from a log directory of bench/run.sh (body.md with
# the tables, raw with the medians, started/load0 with the start time and
# load). bench/run.sh calls it at the end; it can also be run by hand on the
# logs of an interrupted run: bench/report.sh /tmp/dtb-logs.XXXX
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_DIR=$1
out=$BENCH_DIR/RESULTS.md
{
    echo "# Benchmark results (bench/run.sh)"
    echo
    echo "Run $(cat "$LOG_DIR/started") – $(date -u -r "$LOG_DIR/body.md" '+%H:%M UTC'). $(machine_info)."
    echo "Load average at start: $(cat "$LOG_DIR/load0") (1, 5, 15 min); each row gives the load"
    echo "when it started. The machine is shared with other helpers' builds, so absolute"
    echo "times are inflated for every tool (and the load moved during the run); compare"
    echo "ratios. With loopback hosts the target side (sshd, shells, coreutils, the peers'"
    echo "Python on the host) runs on the same 2 cores as the controller."
    echo
    echo "Tools: $(cat "$LOG_DIR/versions" 2>/dev/null || tool_versions). drover release build; ansible with"
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
    echo "Open fds: the tool's main process, sampled every 50 ms. Controller CPU:"
    echo "user+sys of the tool's processes. Target CPU (loopback only): CPU used by"
    echo "everything the bench sshd ran for the tool (sessions, shells, commands, the"
    echo "peers' Python on the host), from the sshd's reaped children (cutime+cstime)."
    echo
    cat "$LOG_DIR/body.md"
    echo
    echo "## Ratios"
    echo
    python3 "$BENCH_DIR/ratios.py" "$LOG_DIR/raw"
    [ -f "$LOG_DIR/notes.md" ] && { echo; cat "$LOG_DIR/notes.md"; }
} >"$out"
echo "wrote $out"
