# shellcheck shell=bash disable=SC2034
# Shared helpers for the drover test-host scripts (sourced, not executed).
# Owns: paths under tests/hosts/.state, the client key, the sudo password,
# the build-input hash, logging.

HOSTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="$HOSTS_DIR/.state"
IMAGE_REPO="drover-testhost"
BASE_REPO="drover-testhost-base"
SUITE="bookworm"
MIRROR="${DROVER_MIRROR:-http://deb.debian.org/debian}"
# Packages baked into the test-host image (and the VM rootfs). Everything a
# playbook installs itself stays OUT of this list.
IMAGE_PACKAGES="openssh-server,sudo,iproute2,procps,ca-certificates,python3,python3-apt,coreutils"
# Subnets are taken from 10.231.X.0/24 (checked against `ip route` and docker).
SUBNET_PREFIX="${DROVER_SUBNET_PREFIX:-10.231}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# ensure_pkg CMD PACKAGE: apt-get install PACKAGE when CMD is missing.
ensure_pkg() {
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2 (for $1)"
    apt-get install -y -q "$2" >/dev/null || {
        apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null
    } || die "cannot install $2"
}

# Client key used for every test host (root and both users).
ensure_client_key() {
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    if [ ! -f "$STATE_DIR/id_ed25519" ]; then
        ssh-keygen -q -t ed25519 -N '' -C drover-tests -f "$STATE_DIR/id_ed25519"
    fi
    CLIENT_KEY="$STATE_DIR/id_ed25519"
}

# Password of the `drover_pw` user (sudo asks for it). Generated once, never
# committed; set in each container at start, not baked into the image.
ensure_sudo_password() {
    mkdir -p "$STATE_DIR"
    if [ ! -s "$STATE_DIR/sudo_password" ]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE_DIR/sudo_password")
    fi
    SUDO_PASSWORD_FILE="$STATE_DIR/sudo_password"
}

# Hash of everything that goes into the base rootfs (debootstrap inputs).
base_hash() {
    printf '%s\n' "$SUITE" "$MIRROR" "$IMAGE_PACKAGES" "v1" | sha256sum | cut -c1-12
}

# Hash of everything that goes into the final image.
image_hash() {
    { base_hash; cat "$HOSTS_DIR/image/Dockerfile" "$HOSTS_DIR/image/entrypoint.sh" \
        "$HOSTS_DIR/image/sshd_drover.conf"; } | sha256sum | cut -c1-12
}

base_tag() { echo "$BASE_REPO:$SUITE-$(base_hash)"; }
image_tag() { echo "$IMAGE_REPO:$SUITE-$(image_hash)"; }
rootfs_tar() { echo "$STATE_DIR/rootfs-$SUITE-$(base_hash).tar"; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
