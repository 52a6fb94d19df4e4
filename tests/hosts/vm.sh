#!/bin/bash
# KVM test host (systemd as PID 1, Debian's own kernel with modules: IPVS,
# nfsd ...), built from the same debootstrap rootfs as the container image.
#   vm.sh build                 disk template .state/vm-<hash>/ (cached)
#   vm.sh start --name PREFIX   boot vm1 for cluster PREFIX (qcow2 overlay on
#                               the template, so every start is a first boot
#                               with fresh host keys); ssh on 127.0.0.1:PORT
#   vm.sh stop --name PREFIX
# Networking: qemu user-mode, restrict=on (the guest reaches nothing), with
# hostfwd 127.0.0.1:PORT -> 22 and guestfwd 10.0.2.100:80 -> the cluster's
# apt repository container. Host keys are printed on the serial console at
# first boot and checked against ssh-keyscan (no trust on first use).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

VM_PACKAGES="linux-image-amd64 systemd-sysv udev kmod initramfs-tools"
VM_MEM=${DROVER_VM_MEM:-1024}
# KVM when it can run a stock kernel. This machine's /dev/kvm is kvm_pvm
# (pagetable-based nested virtualisation): it only runs PVM-enabled guest
# kernels, and Debian's kernel hangs right after decompression there, so
# there we fall back to TCG (software emulation). Override: DROVER_VM_ACCEL.
if [ -n "${DROVER_VM_ACCEL:-}" ]; then
    VM_ACCEL=$DROVER_VM_ACCEL
elif [ -d /sys/module/kvm_pvm ] || [ ! -w /dev/kvm ]; then
    VM_ACCEL=tcg
else
    VM_ACCEL=kvm
fi

vm_hash() {
    ensure_client_key; ensure_sudo_password
    { base_hash; echo "$VM_PACKAGES"; sed -n '/^build()/,/^}/p' "$0"
      cat "$CLIENT_KEY.pub" "$SUDO_PASSWORD_FILE"; } | sha256sum | cut -c1-12
}

ensure_qemu() {
    # qemu-img (qemu-utils) makes the overlays; qemu-system-x86 does not
    # pull it in without recommends.
    command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null && return 0
    log "installing qemu-system-x86 qemu-utils"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 qemu-utils >/dev/null 2>&1; then
        # Machines with qemu-utils from bookworm-backports: take qemu from
        # there too, through a private source list (no change to the host's).
        local d="$STATE_DIR/apt-bpo" kr=/usr/share/keyrings/debian-archive-keyring.gpg
        mkdir -p "$d/lists/partial"
        {
            echo "deb [signed-by=$kr] $MIRROR $SUITE main"
            echo "deb [signed-by=$kr] $MIRROR $SUITE-updates main"
            echo "deb [signed-by=$kr] ${MIRROR%/debian}/debian-security $SUITE-security main"
            echo "deb [signed-by=$kr] $MIRROR $SUITE-backports main"
        } >"$d/sources.list"
        local o=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=/nonexistent" -o "Dir::State::Lists=$d/lists")
        apt-get "${o[@]}" -q update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get "${o[@]}" install -y -q --no-install-recommends \
            -t "$SUITE-backports" qemu-system-x86 qemu-utils >/dev/null || die "cannot install qemu-system-x86 qemu-utils"
    fi
}

build() {
    local out root tarball
    ensure_client_key; ensure_sudo_password
    out="$STATE_DIR/vm-$(vm_hash)"
    if [ -s "$out/disk.img" ] && [ -s "$out/vmlinuz" ]; then echo "$out"; return 0; fi
    exec 9>"$STATE_DIR/vm-build.lock"; flock 9
    # The tarball exists only where build-image.sh ran debootstrap; --rootfs
    # recreates it (e.g. CI: images cached in docker, clean checkout).
    tarball="$("$HOSTS_DIR/build-image.sh" --rootfs)"
    [ -s "$tarball" ] || die "no rootfs tarball $tarball"
    root="$STATE_DIR/vm-rootfs"
    rm -rf "$root" "$out"; mkdir -p "$root" "$out"
    tar -C "$root" -xf "$tarball"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"; mount --rbind /sys "$root/sys"; mount --rbind /dev "$root/dev"
    trap 'umount -R "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true' RETURN
    log "vm: installing $VM_PACKAGES into the rootfs"
    # Small initrd (MODULES=list: only what mounts the virtio root disk):
    # Debian's MODULES=most initrd is 36 MB, and under TCG unpacking it and
    # running its udev cost ~10 s of every boot.
    chroot "$root" sh -e -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $VM_PACKAGES
        printf 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n' >>/etc/initramfs-tools/modules
        echo MODULES=list >/etc/initramfs-tools/conf.d/drover.conf
        update-initramfs -u -k all" \
        >"$STATE_DIR/vm-build.log" 2>&1 || die "chroot apt-get failed, see $STATE_DIR/vm-build.log"
    umount -R "$root/proc" "$root/sys" "$root/dev"
    trap - RETURN
    rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    mkdir -p "$root/var/lib/apt/lists/partial"
    : >"$root/etc/machine-id"
    echo vm1 >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 vm1\n' >"$root/etc/hosts"
    echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
    echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
    echo 'deb [trusted=yes] http://10.0.2.100/ ./' >"$root/etc/apt/sources.list"
    # Static address for QEMU user networking (guest 10.0.2.15, gateway
    # .2, DNS .3), set by a oneshot unit that loads virtio_net itself: under
    # TCG on a loaded machine systemd-networkd took over 2 minutes to start
    # and then timed out, leaving the VM without network (ssh hung at the
    # banner exchange).
    cat >"$root/etc/systemd/system/drover-net.service" <<'EON'
[Unit]
Description=drover: static address on eth0 for QEMU user networking
DefaultDependencies=no
Before=network.target ssh.service
Wants=network.target
After=systemd-modules-load.service
[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=300
ExecStart=/bin/sh -c 'modprobe virtio_net 2>/dev/null; i=0; until ip link show eth0 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 1200 ] && exit 1; sleep 0.2; done; ip link set lo up; ip link set eth0 up; ip addr replace 10.0.2.15/24 dev eth0; ip route replace default via 10.0.2.2'
[Install]
WantedBy=multi-user.target
EON
    ln -sf /etc/systemd/system/drover-net.service "$root/etc/systemd/system/multi-user.target.wants/drover-net.service"
    # First boot: host keys, printed on the serial console for vm.sh.
    cat >"$root/etc/systemd/system/drover-hostkeys.service" <<'EOS'
[Unit]
Description=drover: generate SSH host keys and print them on the console
Before=ssh.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for t in ed25519 ecdsa; do f=/etc/ssh/ssh_host_$${t}_key; [ -s $$f ] || ssh-keygen -q -t $$t -N "" -f $$f; done; { echo DROVER-HOSTKEYS-BEGIN; cat /etc/ssh/ssh_host_*_key.pub; echo DROVER-HOSTKEYS-END; } >/dev/ttyS0'
[Install]
WantedBy=multi-user.target
EOS
    ln -sf /etc/systemd/system/drover-hostkeys.service "$root/etc/systemd/system/multi-user.target.wants/drover-hostkeys.service"
    cp "$HOSTS_DIR/image/sshd_drover.conf" "$root/etc/ssh/sshd_config.d/drover.conf"
    # Host keys: ed25519 and ECDSA only. An RSA key took 23 s of the boot to
    # generate under TCG (and drover drops ssh-rsa anyway).
    printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n' \
        >"$root/etc/ssh/sshd_config.d/hostkeys.conf"
    # Units that only cost CPU under TCG (and apt-daily would race the
    # tests' apt-get for the dpkg lock).
    local unit
    for unit in e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    chroot "$root" sh -e -c '
        useradd -m -s /bin/bash drover; useradd -m -s /bin/bash drover_pw
        echo "drover ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/drover
        echo "drover_pw ALL=(ALL) ALL" >/etc/sudoers.d/drover_pw
        chmod 440 /etc/sudoers.d/drover /etc/sudoers.d/drover_pw'
    printf 'drover_pw:%s\n' "$(cat "$SUDO_PASSWORD_FILE")" | chroot "$root" chpasswd
    local u h
    for u in root:/root drover:/home/drover drover_pw:/home/drover_pw; do
        h=${u#*:}; u=${u%%:*}
        mkdir -p "$root$h/.ssh"; cp "$CLIENT_KEY.pub" "$root$h/.ssh/authorized_keys"
        chmod 700 "$root$h/.ssh"; chmod 600 "$root$h/.ssh/authorized_keys"
        chroot "$root" chown -R "$u:$u" "$h/.ssh"
    done
    cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
    cp "$root"/boot/initrd.img-* "$out/initrd.img"
    mkfs.ext4 -q -F -L drover-vm -d "$root" "$out/disk.img.tmp" 3G >/dev/null
    mv "$out/disk.img.tmp" "$out/disk.img"
    rm -rf "$root"
    local old
    local old q used
    for old in "$STATE_DIR"/vm-*/; do
        [ "${old%/}" = "$out" ] && continue
        # Keep a template that a VM's overlay still uses (another cluster
        # may run a VM built from it, e.g. a checkout with another build()).
        used=0
        for q in "$STATE_DIR"/*/vm*.qcow2; do
            [ -f "$q" ] && head -c 65536 "$q" | grep -qaF "${old%/}/disk.img" && used=1
        done
        [ "$used" = 1 ] || rm -rf "$old"
    done
    log "vm: template in $out"
    echo "$out"
}

# build() under a second lock, re-checking for the template once it is
# held: build() tests for the template before it takes vm-build.lock, so two
# callers that both found it missing built it twice, and the second deleted
# the first one's fresh disk under its starting VM. (A wrapper, so that
# build()'s text, and with it the template hash, stays the same.)
build_once() {
    exec 8>"$STATE_DIR/vm-build-once.lock"; flock 8
    build   # its first test, now under the lock, is the re-check
    exec 8>&-
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The docker network of cluster PREFIX: its Linux bridge (br-<id>), empty
# when the cluster has no network (then the VMs get no second NIC).
cluster_bridge() {
    local id
    id=$(docker network inspect -f '{{.Id}}' "$1-net" 2>/dev/null) || return 0
    [ -n "$id" ] && ip link show "br-${id:0:12}" >/dev/null 2>&1 && echo "br-${id:0:12}"
    return 0
}

# Tap device name of VM i of cluster PREFIX (IFNAMSIZ: at most 15 chars).
tap_name() { echo "dv$(printf %s "$1" | md5sum | cut -c1-8)v$2"; }

# Address of VM i on the cluster subnet: .(200+i) (containers are .11 up).
vm_addr() { echo "$(cut -d/ -f1 "$STATE_DIR/$1/subnet" | sed 's/\.0$//').$((200 + $2))"; }

ssh_vm() {
    local dir=$1 port=$2; shift 2
    ssh -q -i "$CLIENT_KEY" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o ConnectTimeout=30 -p "$port" root@127.0.0.1 "$@"
}

# Boots vmI (daemonized qemu). With a bridge: a second NIC (eth1 in the
# guest) on a tap enslaved to it, so the VM is on the cluster's L2 segment.
launch() {
    local prefix=$1 i=$2 tpl=$3 br=$4 dir port repo guestfwd tap mac
    dir="$STATE_DIR/$prefix"
    qemu-img create -q -f qcow2 -F raw -b "$tpl/disk.img" "$dir/vm$i.qcow2"
    port=$(free_port)
    guestfwd=
    if docker inspect "$prefix-apt" >/dev/null 2>&1; then
        repo="$(cut -d/ -f1 "$dir/subnet" | sed 's/\.0$/.2/')"
        guestfwd=",guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:$repo:80"
    fi
    local nic2=()
    if [ -n "$br" ]; then
        tap=$(tap_name "$prefix" "$i")
        ip link del "$tap" 2>/dev/null || true
        ip tuntap add dev "$tap" mode tap
        ip link set "$tap" master "$br" up
        # unique on the bridge: the subnet's third octet and the host number
        mac=$(printf '52:54:00:d7:%02x:%02x' "$(cut -d. -f3 "$dir/subnet")" $((200 + i)))
        # shellcheck disable=SC2054
        nic2=(-netdev "tap,id=n1,ifname=$tap,script=no,downscript=no" -device "virtio-net-pci,netdev=n1,mac=$mac")
    fi
    : >"$dir/vm$i.console"
    local cpu=(-accel kvm -cpu host -smp 2)
    # shellcheck disable=SC2054
    [ "$VM_ACCEL" = tcg ] && cpu=(-accel tcg,thread=multi -cpu max -smp 2)
    qemu-system-x86_64 "${cpu[@]}" -m "$VM_MEM" -name "vm$i" \
        -kernel "$tpl/vmlinuz" -initrd "$tpl/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet" \
        -drive "file=$dir/vm$i.qcow2,if=virtio,format=qcow2" \
        -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22$guestfwd" \
        -device virtio-net-pci,netdev=n0 "${nic2[@]}" \
        -display none -serial "file:$dir/vm$i.console" -monitor none \
        -daemonize -pidfile "$dir/vm$i.pid"
    echo "$port" >"$dir/vm$i.port"
}

# vmI answers on ssh and its keys match the console's: known_hosts lines.
ready() {
    local dir=$1 i=$2 port
    port=$(cat "$dir/vm$i.port")
    grep -q DROVER-HOSTKEYS-END "$dir/vm$i.console" 2>/dev/null || return 1
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
    ssh-keyscan -T 5 -p "$port" 127.0.0.1 2>/dev/null | grep -q . || return 1
}

host_keys() {
    local dir=$1 i=$2 port keys scanned
    port=$(cat "$dir/vm$i.port")
    keys=$(sed -n '/DROVER-HOSTKEYS-BEGIN/,/DROVER-HOSTKEYS-END/p' "$dir/vm$i.console" | tr -d '\r' \
        | grep -E '^(ssh-|ecdsa-)' | awk -v p="$port" '{print "[127.0.0.1]:"p" "$1" "$2}' | sort)
    scanned=$(ssh-keyscan -T 5 -t ed25519,ecdsa,rsa -p "$port" 127.0.0.1 2>/dev/null | sort)
    [ -n "$scanned" ] && [ "$scanned" = "$keys" ] || die "vm$i: host keys from ssh-keyscan differ from the console's"
    echo "$keys"
}

# Persistent guest set-up after first boot: hostname vmI and, with the
# second NIC, eth1's static cluster address (a oneshot unit, as eth0's).
configure() {
    local dir=$1 i=$2 addr=$3 port
    port=$(cat "$dir/vm$i.port")
    # shellcheck disable=SC2029
    ssh_vm "$dir" "$port" "set -e; echo vm$i >/etc/hostname; hostname vm$i
        sed -i 's/^127\.0\.1\.1 .*/127.0.1.1 vm$i/' /etc/hosts
        [ -n '$addr' ] || exit 0
        cat >/etc/systemd/system/drover-net2.service <<'EOU'
[Unit]
Description=drover: static cluster address on eth1 (tap on the docker bridge)
After=drover-net.service
Before=network-online.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'i=0; until ip link show eth1 >/dev/null 2>&1; do i=\$\$((i+1)); [ \$\$i -gt 600 ] && exit 1; sleep 0.2; done; ip link set eth1 up; ip addr replace $addr/24 dev eth1'
[Install]
WantedBy=multi-user.target
EOU
        systemctl daemon-reload; systemctl enable --now drover-net2.service >/dev/null 2>&1
        ip -4 -o addr show dev eth1 | grep -qF ' $addr/24 '"
}

# start --name PREFIX [--count N]: boots vm1..vmN in parallel.
start() {
    local prefix=$1 count=${2:-1} dir tpl br i t0 addr keys
    dir="$STATE_DIR/$prefix"; [ -d "$dir" ] || die "cluster $prefix is not up"
    [[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 54 ] || die "bad VM count '$count' (1..54)"
    ensure_qemu; ensure_pkg socat socat; ensure_client_key
    tpl="$(build_once)"
    stop "$prefix"
    br=$(cluster_bridge "$prefix")
    t0=$(date +%s)
    for i in $(seq 1 "$count"); do launch "$prefix" "$i" "$tpl" "$br"; done
    log "vm1..vm$count: booting ($VM_ACCEL)${br:+, eth1 on $br}"
    # Time-based: under TCG on a loaded machine a boot took over 6 minutes.
    local limit=${DROVER_VM_BOOT_TIMEOUT:-900} pending
    # A TCG boot now and then spins forever in the guest (seen: one VM at
    # 100% CPU for 15 minutes while its twin was up in 64 s): a VM with no
    # sshd after DROVER_VM_RELAUNCH seconds is killed and booted once more.
    local relaunch=${DROVER_VM_RELAUNCH:-420} again=" " pid
    while :; do
        pending=0
        for i in $(seq 1 "$count"); do
            [ -f "$dir/vm$i.up" ] && continue
            if ready "$dir" "$i"; then
                echo $(( $(date +%s) - t0 )) >"$dir/vm$i.up"
                log "vm$i: sshd up after $(cat "$dir/vm$i.up") s"
            else
                pending=1
                if [ $(( $(date +%s) - t0 )) -ge "$relaunch" ] && [[ "$again" != *" $i "* ]]; then
                    again="$again$i "
                    log "vm$i: no sshd after $relaunch s: booting it again (first console: vm$i.console.1)"
                    pid=$(cat "$dir/vm$i.pid" 2>/dev/null || true)
                    if [ -n "$pid" ] && grep -q qemu "/proc/$pid/cmdline" 2>/dev/null; then
                        kill "$pid"
                        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                    fi
                    cp "$dir/vm$i.console" "$dir/vm$i.console.1"
                    launch "$prefix" "$i" "$tpl" "$br"
                fi
            fi
        done
        [ "$pending" = 0 ] && break
        [ $(( $(date +%s) - t0 )) -ge "$limit" ] && die "VMs did not come up in $limit s, see $dir/vm*.console"
        sleep 0.5
    done
    : >"$dir/vm"; : >"$dir/vm-hosts"
    for i in $(seq 1 "$count"); do
        keys=$(host_keys "$dir" "$i")
        echo "$keys" >>"$dir/known_hosts"
        addr=
        if [ -n "$br" ]; then
            addr=$(vm_addr "$prefix" "$i")
            # the same keys for the cluster address (ssh straight over the bridge)
            sed "s/^\[127\.0\.0\.1\]:[0-9]*/$addr/" <<<"$keys" >>"$dir/known_hosts"
        fi
        configure "$dir" "$i" "$addr" || die "vm$i: guest set-up (hostname, eth1 $addr) failed"
        echo "vm$i ansible_host=127.0.0.1 ansible_port=$(cat "$dir/vm$i.port")${addr:+ vm_addr=$addr}" >>"$dir/vm"
        [ -n "$addr" ] && echo "vm$i $addr" >>"$dir/vm-hosts"
    done
    log "vm1..vm$count up in $(( $(date +%s) - t0 )) s"
}

stop() {
    local prefix=$1 dir pid f i addr
    dir="$STATE_DIR/$prefix"
    for f in "$dir"/vm*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null && grep -q qemu "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        i=${f##*/vm}; i=${i%.pid}
        ip link del "$(tap_name "$prefix" "$i")" 2>/dev/null || true
        rm -f "$f" "$dir/vm$i.qcow2" "$dir/vm$i.port" "$dir/vm$i.up"
    done
    if [ -f "$dir/vm-hosts" ] && [ -f "$dir/known_hosts" ]; then
        while read -r _ addr; do sed -i "/^${addr//./\\.} /d" "$dir/known_hosts"; done <"$dir/vm-hosts"
    fi
    rm -f "$dir/vm" "$dir/vm-hosts"
    [ -f "$dir/known_hosts" ] && sed -i '/^\[127\.0\.0\.1\]:/d' "$dir/known_hosts"
    return 0
}

cmd=${1:-}; shift || true
prefix=drover count=1
while [ $# -gt 0 ]; do
    case "$1" in
        --name) prefix=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        *) echo "usage: $0 build | start [--name PREFIX] [--count N] | stop [--name PREFIX]" >&2; exit 2 ;;
    esac
done
case "$cmd" in
    build) build_once ;;
    start) start "$prefix" "$count" ;;
    stop) stop "$prefix" ;;
    *) echo "usage: $0 build | start [--name PREFIX] [--count N] | stop [--name PREFIX]" >&2; exit 2 ;;
esac
