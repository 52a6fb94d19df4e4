#!/bin/bash
# Builds the drover test-host Docker image, cached by a hash of its inputs.
#   debootstrap --variant=minbase bookworm (+ the few IMAGE_PACKAGES of lib.sh)
#   -> .state/rootfs-bookworm-<hash>.tar (kept: the VM image starts from it)
#   -> docker import  drover-testhost-base:bookworm-<hash>
#   -> docker build image/Dockerfile -> drover-testhost:bookworm-<hash>
# A second run that finds the tag does nothing. Prints the image tag on stdout.
# Usage: build-image.sh [--force | --rootfs]
#   --rootfs  also make sure the rootfs tarball exists (the VM is built from
#             it) and print its path instead. A checkout without .state/ on a
#             machine whose docker already has the images (CI) has no tarball:
#             it is recreated from the cached base image (docker create +
#             docker export, no debootstrap), or by debootstrap when the base
#             image is gone too.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

force=0 rootfs=0
case "${1:-}" in
    --force) force=1 ;;
    --rootfs) rootfs=1 ;;
    "") ;;
    *) die "usage: $0 [--force | --rootfs]" ;;
esac

mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/build.lock"
flock 9

tag="$(image_tag)"
base="$(base_tag)"
tarball="$(rootfs_tar)"

if [ "$rootfs" = 1 ] && [ ! -s "$tarball" ] && image_exists "$base"; then
    # Same tree as debootstrap's tarball: docker export of a created (never
    # started) container, minus what docker adds (.dockerenv and the empty
    # mount points hostname/hosts/resolv.conf the tarball does not have),
    # repacked with ./ names as the debootstrap branch below writes them.
    log "rootfs tarball missing: exporting it from $base"
    root="$STATE_DIR/rootfs-export"
    rm -rf "$root"; mkdir -p "$root"
    cid=$(docker create "$base" /bin/true)
    docker export "$cid" | tar --numeric-owner -C "$root" -xf - || { docker rm "$cid" >/dev/null; die "docker export of $base failed"; }
    docker rm "$cid" >/dev/null
    rm -f "$root/.dockerenv" "$root/etc/hostname" "$root/etc/resolv.conf"
    [ -s "$root/etc/hosts" ] || rm -f "$root/etc/hosts"
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
fi

if [ "$force" = 0 ] && image_exists "$tag" && { [ "$rootfs" = 0 ] || [ -s "$tarball" ]; }; then
    if [ "$rootfs" = 1 ]; then echo "$tarball"; else echo "$tag"; fi
    exit 0
fi

if [ "$force" = 1 ] || [ ! -s "$tarball" ]; then
    ensure_pkg debootstrap debootstrap
    root="$STATE_DIR/rootfs-build"
    rm -rf "$root"
    log "debootstrap --variant=minbase $SUITE (+ $IMAGE_PACKAGES) from $MIRROR"
    t0=$(date +%s)
    debootstrap --variant=minbase --include="$IMAGE_PACKAGES" "$SUITE" "$root" "$MIRROR" \
        >"$STATE_DIR/debootstrap.log" 2>&1 || die "debootstrap failed, see $STATE_DIR/debootstrap.log"
    log "debootstrap took $(( $(date +%s) - t0 )) s"
    # Nothing machine-specific in the image: host keys are generated per
    # container, the hostname, resolv.conf and hosts come from docker.
    rm -f "$root"/etc/ssh/ssh_host_*
    rm -f "$root"/etc/hostname "$root"/etc/resolv.conf
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    mkdir -p "$root"/var/lib/apt/lists/partial
    [ -e "$root/etc/machine-id" ] && : >"$root/etc/machine-id"
    rm -f "$root"/var/log/*.log "$root"/var/log/apt/*
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
fi

if [ "$force" = 1 ] || ! image_exists "$base"; then
    log "docker import $(basename "$tarball") -> $base"
    docker import "$tarball" "$base" >/dev/null
fi

log "docker build -> $tag"
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" -t "$tag" -t "$IMAGE_REPO:$SUITE" \
    "$HOSTS_DIR/image" >"$STATE_DIR/docker-build.log" 2>&1 || die "docker build failed, see $STATE_DIR/docker-build.log"
# Drop older builds of the image (ignored when a container still uses one).
for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" | grep -v -e ":$SUITE\$" -e "^$tag\$"); do
    docker rmi "$old" >/dev/null 2>&1 || true
done
if [ "$rootfs" = 1 ]; then echo "$tarball"; else echo "$tag"; fi
