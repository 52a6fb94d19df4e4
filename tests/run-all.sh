#!/usr/bin/env bash
# The whole test suite: the README's second command, and what .ci/run calls.
# It installs what the tests need (it never skips a suite for a missing tool):
#   - ansible-core in .venv (the side-by-side oracle for inventories and playbooks)
#   - kazoo in .venv (ZooKeeper's Python client: the tests' independent ZooKeeper reader)
#   - OpenSSH's sshd (the SSH transport is tested against a real sshd on loopback)
#   - Docker test hosts (tests/hosts/: image built from debootstrap on first use,
#     clusters brought up by the cluster tests and torn down at the end)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/ansible-playbook ]; then
  echo "== installing ansible-core into .venv (test oracle)"
  python3 -m venv .venv
  .venv/bin/pip install -q ansible-core
fi

if ! .venv/bin/python -c 'import kazoo' 2>/dev/null; then
  echo "== installing kazoo into .venv (the independent ZooKeeper client of tests/cluster_zk.rs, tests/playbook_arcus.rs)"
  .venv/bin/pip install -q kazoo
fi

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ERROR: the SSH tests need OpenSSH's server (/usr/sbin/sshd): install openssh-server (as root) and re-run" >&2
    exit 1
  fi
  echo "== installing openssh-server (SSH transport tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null
fi

if ! command -v rsync >/dev/null; then
  echo "== installing rsync (the synchronize module runs the controller's rsync)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null
fi

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "ERROR: the cluster tests (tests/cluster.rs) need a running Docker engine and root; see tests/README.md" >&2
  exit 1
fi

teardown() {
  for c in dtr dts dtk dtx dtf dtu dtp dtm dtn dtv dtq dtg dtz dtb dtw dta dtc dte dty dtj; do bash tests/hosts/cluster.sh down --name "$c" >/dev/null 2>&1 || true; done
}
trap teardown EXIT

cargo test --workspace --all-targets
