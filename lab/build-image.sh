#!/usr/bin/env bash
# Build a systemd-ready Debian image for the lab from Debian's archive with
# debootstrap + `docker import` (no container registry is needed).
#
#   lab/build-image.sh SUITE TAG
#
#   SUITE  a Debian suite: bookworm, trixie, sid ...
#   TAG    the image tag to create, e.g. oci-mlops-lab/debian:bookworm
#
# Environment:
#   LAB_DEBIAN_MIRROR  archive to bootstrap from (default http://deb.debian.org/debian)
#   LAB_REBUILD=1      rebuild even if the image exists
#
# Docker 20.10 cannot set STOPSIGNAL on import: the lab passes --stop-signal SIGRTMIN+3.
# The image records the systemd version it ships as the label
# org.oci-mlops.systemd-version: the lab reads it to choose the cgroup mount
# (systemd >= 258 refuses the cgroup v1 hierarchy).
set -euo pipefail

suite=${1:?usage: build-image.sh SUITE TAG}
tag=${2:?usage: build-image.sh SUITE TAG}
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# Bump when the image recipe changes: images of an older revision are rebuilt.
revision=2
have=$(docker image inspect -f '{{ index .Config.Labels "org.oci-mlops.image-revision" }}' "$tag" 2>/dev/null || true)
if [[ "${LAB_REBUILD:-0}" != 1 && "$have" == "$revision" ]]; then
  echo "image $tag exists (revision $revision; LAB_REBUILD=1 to rebuild)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/oci-mlops-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# What a minimal cloud image has: systemd as PID 1, Python for Ansible, sudo.
include=systemd,systemd-sysv,dbus,python3,sudo,iproute2,procps,ca-certificates,gnupg,iptables
start=$(date +%s)
echo "debootstrap $suite from $mirror -> $tag"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

if [[ "$suite" == sid || "$suite" == unstable ]]; then
  # sid's Release file is sometimes past its Valid-Until on mirrors: tolerate
  # that for this image only.
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99lab-no-check-valid-until"
fi
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"

# A container has no consoles, udev or kernel file systems to manage.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
  systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-firstboot.service \
  systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
  sys-kernel-tracing.mount dev-hugepages.mount systemd-modules-load.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"

# Docker's embedded DNS (127.0.0.11) lives on NAT rules Docker puts into the
# container's netfilter tables before systemd starts. firewalld < 2.0 (Debian
# 12) flushes every iptables table when it starts, which breaks name
# resolution in the container. Save the rules at boot, put them back after
# firewalld started. A lab-only concern: OCI instances have no Docker DNS.
cat >"$root/usr/local/sbin/lab-docker-dns" <<'SCRIPT'
#!/bin/sh
# lab-docker-dns save|restore: keep Docker's embedded-DNS NAT rules.
rules=/run/lab-docker-dns.rules
case "$1" in
save) iptables-save -t nat >"$rules" ;;
restore)
  [ -s "$rules" ] || exit 0
  iptables-save -t nat | grep -q -- '-A DOCKER_OUTPUT' && exit 0
  iptables-restore -n <"$rules"
  ;;
*) echo "usage: $0 save|restore" >&2; exit 2 ;;
esac
SCRIPT
chmod 0755 "$root/usr/local/sbin/lab-docker-dns"
cat >"$root/etc/systemd/system/lab-docker-dns.service" <<'UNIT'
[Unit]
Description=Save Docker's embedded-DNS NAT rules (lab image)
DefaultDependencies=no
Before=firewalld.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lab-docker-dns save

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/firewalld.service.d"
ln -sf /etc/systemd/system/lab-docker-dns.service "$root/etc/systemd/system/multi-user.target.wants/lab-docker-dns.service"
printf '[Service]\nExecStartPost=-/usr/local/sbin/lab-docker-dns restore\n' \
  >"$root/etc/systemd/system/firewalld.service.d/50-lab-docker-dns.conf"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb

systemd_version=$(chroot "$root" dpkg-query -W -f='${Version}' systemd | sed -E 's/^([0-9]+).*/\1/')
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  --change "LABEL org.oci-mlops.systemd-version=$systemd_version org.oci-mlops.suite=$suite org.oci-mlops.image-revision=$revision" \
  - "$tag" >/dev/null
echo "built $tag (systemd $systemd_version) in $(( $(date +%s) - start ))s"
