#!/usr/bin/env bash
# Runs every benchmark of issue 7 and writes bench/RESULTS.md (bench/report.sh):
#   W1 on 10 loopback hosts and on 10 container hosts (drover, pyinfra,
#   ansible-playbook with pipelining, ansible-playbook defaults), and
#   W2 (drover over 10 / 100 / 1,000 loopback hosts, the peers up to 100).
# Env knobs: R (rounds per W1 table, 3), R_ANSIBLE (rounds with ansible, R),
# W2_SIZES, W2_R, W2_PEERS, W2_PEER_MAX, SKIP_W1 (see bench/loop-suite.sh),
# SKIP_CONTAINERS=1. Needs root (namespaces, docker). Not a test: CI never runs it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
bench_setup
LOG_DIR=$(mktemp -d /tmp/dtb-logs.XXXX); export LOG_DIR RAW=$LOG_DIR/raw
: >"$RAW"
date -u '+%Y-%m-%d %H:%M UTC' >"$LOG_DIR/started"
loadavg >"$LOG_DIR/load0"
tool_versions >"$LOG_DIR/versions"
echo "logs in $LOG_DIR"
body=$LOG_DIR/body.md
bench/in-netns.sh bash bench/loop-suite.sh >"$body"
if [ "${SKIP_CONTAINERS:-}" != 1 ]; then
    echo >>"$body"
    bench/w1.sh 10 "${R:-3}" >>"$body"
fi
bench/report.sh "$LOG_DIR"
