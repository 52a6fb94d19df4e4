#!/usr/bin/env python3
"""What a workload left on its hosts, as one short hash per tool run.

Reads an inventory dir's `hosts` file (name address root per line). For each
host, lists every path under its root with its mode and content, with the
host's name (which the templates print) replaced by HOST, and hashes that.
Prints the hash, followed by "!" when the hosts differ from one another.
--docker: the hosts are containers named like the hosts (read with
`docker exec NAME tar`). A benchmark helper, not a test.
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile


def local_entries(root):
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            data = b""
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    data = f.read()
            yield rel, st.st_mode & 0o7777, data


def docker_entries(name, root):
    r = subprocess.run(["docker", "exec", name, "tar", "-C", root, "-cf", "-", "."],
                       capture_output=True)
    if r.returncode != 0:
        return
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        for m in t.getmembers():
            rel = os.path.normpath(m.name)
            if rel == ".":
                continue
            data = t.extractfile(m).read() if m.isfile() else b""
            yield rel, m.mode & 0o7777, data


def host_hash(name, root, docker):
    h = hashlib.sha256()
    ents = docker_entries(name, root) if docker else local_entries(root)
    for rel, mode, data in sorted(ents):
        h.update(f"{rel} {mode:o} ".encode())
        h.update(hashlib.sha256(data.replace(root.encode(), b"ROOT")
                                .replace(name.encode(), b"HOST")).digest())
    return h.hexdigest()[:16]


def main():
    docker = "--docker" in sys.argv
    inv = [a for a in sys.argv[1:] if not a.startswith("--")][0]
    hashes = set()
    first = None
    for line in open(os.path.join(inv, "hosts")):
        name, _addr, root = line.split()
        x = host_hash(name, root, docker)
        first = first or x
        hashes.add(x)
    print(first + ("" if len(hashes) == 1 else "!"))


main()
