#!/bin/bash
# Local apt repository for the test hosts (they sit on an --internal docker
# network and cannot reach Debian's mirror).
#   apt-repo.sh build   download every package of packages.txt with the
#                       dependencies and recommends it would pull into a
#                       fresh test host (resolved by the host's apt against
#                       the image's own dpkg status), index it as a flat
#                       repository in .state/apt-repo/. Cached: a second run
#                       with the same packages.txt and image does nothing.
#   apt-repo.sh serve NETWORK IP NAME
#                       run container NAME (same image, python3 http.server)
#                       on NETWORK at IP serving that directory on port 80.
# Hosts use: deb [trusted=yes] http://IP/ ./
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

REPO="$STATE_DIR/apt-repo"
APTDIR="$STATE_DIR/apt-host"

repo_hash() {
    { base_hash; grep -v '^\s*#' "$HOSTS_DIR/packages.txt"; } | sha256sum | cut -c1-12
}

apt_opts() {
    echo -o "Dir::Etc::SourceList=$APTDIR/sources.list" \
        -o "Dir::Etc::SourceParts=$APTDIR/sources.list.d" \
        -o "Dir::State=$APTDIR/state" \
        -o "Dir::State::status=$APTDIR/status" \
        -o "Dir::Cache=$APTDIR/cache" \
        -o "Dir::Cache::archives=$REPO/" \
        -o "APT::Install-Recommends=true" \
        -o "Debug::NoLocking=true"
}

write_release() {
    local f size
    {
        echo "Origin: drover-tests"
        echo "Label: drover-tests"
        echo "Suite: local"
        echo "Codename: local"
        echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
        echo "SHA256:"
        for f in Packages Packages.gz; do
            size=$(stat -c %s "$REPO/$f")
            echo " $(sha256sum "$REPO/$f" | cut -d' ' -f1) $size $f"
        done
    } >"$REPO/Release"
}

build() {
    local want stamp tarball pkgs p n
    mkdir -p "$STATE_DIR"
    exec 7>"$STATE_DIR/apt-repo.lock"
    flock 7
    want="$(repo_hash)"
    stamp="$REPO/.stamp"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "apt repo up to date ($REPO, $(ls "$REPO"/*.deb | wc -l) packages)"
        return 0
    fi
    ensure_pkg dpkg-scanpackages dpkg-dev
    tarball="$(rootfs_tar)"
    # The image may be cached in docker while this checkout has no rootfs
    # tarball (a fresh clone on the same machine): read the package status
    # from the base image then.
    [ -s "$tarball" ] || "$HOSTS_DIR/build-image.sh" >/dev/null
    mkdir -p "$REPO/partial" "$APTDIR/sources.list.d" "$APTDIR/state/lists/partial" "$APTDIR/cache"
    rm -f "$stamp"
    local kr=/usr/share/keyrings/debian-archive-keyring.gpg
    cat >"$APTDIR/sources.list" <<EOS
deb [signed-by=$kr] $MIRROR $SUITE main
deb [signed-by=$kr] $MIRROR $SUITE-updates main
deb [signed-by=$kr] ${MIRROR%/debian}/debian-security $SUITE-security main
EOS
    if [ -s "$tarball" ]; then
        tar -xOf "$tarball" ./var/lib/dpkg/status >"$APTDIR/status"
    else
        docker run --rm "$(base_tag)" cat /var/lib/dpkg/status >"$APTDIR/status"
    fi
    # shellcheck disable=SC2046
    apt-get $(apt_opts) -q update >"$STATE_DIR/apt-repo.log" 2>&1 || die "apt-get update failed, see $STATE_DIR/apt-repo.log"
    pkgs=$(grep -v '^\s*#' "$HOSTS_DIR/packages.txt" | tr -s ' \n' '\n' | grep -v '^$')
    # One resolution per package: each closure is what installing that
    # package alone pulls, so alternative choices match a real install.
    for p in $pkgs; do
        # shellcheck disable=SC2046
        apt-get $(apt_opts) -q -y --download-only install "$p" >>"$STATE_DIR/apt-repo.log" 2>&1 \
            || die "cannot download $p, see $STATE_DIR/apt-repo.log"
    done
    rm -rf "$REPO/partial" "$REPO/lock"
    (cd "$REPO" && dpkg-scanpackages -m . /dev/null 2>/dev/null >Packages && gzip -9nkf Packages)
    write_release
    n=$(ls "$REPO"/*.deb | wc -l)
    echo "$want" >"$stamp"
    log "apt repo built: $n packages, $(du -sh "$REPO" | cut -f1) in $REPO"
}

serve() {
    local net=$1 ip=$2 name=$3 image
    [ -f "$REPO/.stamp" ] || die "no apt repo: run $0 build"
    image="$("$HOSTS_DIR/build-image.sh")"
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --init --name "$name" --hostname "$name" --network "$net" --ip "$ip" \
        --label "drover.cluster=${name%-apt}" --label drover.role=apt \
        -v "$REPO:/repo:ro" --entrypoint python3 "$image" \
        -m http.server 80 --bind 0.0.0.0 --directory /repo >/dev/null
}

case "${1:-}" in
    build) build ;;
    serve) shift; [ $# = 3 ] || die "usage: $0 serve NETWORK IP NAME"; serve "$@" ;;
    *) echo "usage: $0 build | serve NETWORK IP NAME" >&2; exit 2 ;;
esac
