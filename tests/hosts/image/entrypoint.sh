#!/bin/sh
# Entrypoint of the drover test-host container (runs under docker's --init,
# tini, which reaps orphaned daemons).
# - injects the client key into root's, drover's and drover_pw's
#   authorized_keys, sets drover_pw's password, installs the apt sources,
#   all from the read-only seed directory /etc/drover-seed (bind-mounted by
#   cluster.sh);
# - generates host keys on first start (none are baked into the image), so
#   every container has its own and keeps them across stop/start;
# - starts sshd through its init.d script, as any other service, so
#   `service ssh restart` inside the container behaves as on a host;
# - starts the other services enabled in /etc/rc2.d (a restart is a reboot);
# - then waits forever. Services stay under init.d (`service NAME start`).
set -eu
SEED=/etc/drover-seed

install_keys() {
    user=$1 home=$2
    mkdir -p "$home/.ssh"
    cp "$SEED/authorized_keys" "$home/.ssh/authorized_keys"
    chmod 700 "$home/.ssh"
    chmod 600 "$home/.ssh/authorized_keys"
    chown -R "$user:$user" "$home/.ssh"
}

if [ -f "$SEED/authorized_keys" ]; then
    install_keys root /root
    install_keys drover /home/drover
    install_keys drover_pw /home/drover_pw
fi
if [ -s "$SEED/sudo_password" ]; then
    printf 'drover_pw:%s\n' "$(cat "$SEED/sudo_password")" | chpasswd
fi
if [ -f "$SEED/sources.list" ]; then
    cp "$SEED/sources.list" /etc/apt/sources.list
    rm -f /etc/apt/sources.list.d/*
fi

ssh-keygen -A >/dev/null
mkdir -p /run/sshd
/etc/init.d/ssh start >/dev/null

# "Boot": start every other service enabled in runlevel 2 (update-rc.d), in
# order, as sysvinit would, so a container restart behaves like a reboot.
for s in /etc/rc2.d/S*; do
    [ -x "$s" ] || continue
    case "$s" in */S[0-9][0-9]ssh) continue ;; esac
    "$s" start >>/var/log/drover-boot.log 2>&1 || echo "failed: $s" >>/var/log/drover-boot.log
done

# Marker for cluster.sh: the entrypoint finished.
touch /run/drover-ready
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
