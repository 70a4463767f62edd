#!/usr/bin/env bash
# mmdebstrap --customize-hook: turns the Debian root filesystem into the appliance's.
#   customize.sh ROOTFS BOARD WORKDIR
# WORKDIR holds wheels/ (the appliance and its pinned dependencies, built on the host) and
# models/ (prepared on the host from the registry packages that carry them).
set -euo pipefail
ROOTFS=$1 BOARD=$2 WORK=$3
HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$HERE/.." && pwd)
say() { printf '    [customize, %s s] %s\n' "$SECONDS" "$*"; }

say "systemd units and settings from systemd/install.list"
while read -r src dest mode; do
  case "$src" in ''|'#'*) continue ;; esac
  install -D -m "$mode" "$REPO/systemd/$src" "$ROOTFS$dest"
done < "$REPO/systemd/install.list"

say "overlay: common + $BOARD"
cp -a "$HERE/overlay/common/." "$ROOTFS/"
if [ -d "$HERE/overlay/$BOARD" ]; then cp -a "$HERE/overlay/$BOARD/." "$ROOTFS/"; fi

cat > "$ROOTFS/etc/fstab" <<FSTAB
# Root is replaced whole by updates; everything that changes lives on /data.
LABEL=root  /               ext4  noatime,errors=remount-ro  0 1
LABEL=BOOT  /boot/firmware  vfat  noatime,umask=0022,nofail  0 2
LABEL=data  /data           ext4  noatime,nofail             0 2
FSTAB
echo appliance > "$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tappliance\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
  > "$ROOTFS/etc/hosts"

say "Python venv /opt/appliance/venv (wheels built on the host, no index)"
rm -rf "$ROOTFS/tmp/wheels"
cp -a "$WORK/wheels" "$ROOTFS/tmp/wheels"
chroot "$ROOTFS" python3 -m venv /opt/appliance/venv
sources=$(cd "$ROOTFS/tmp/wheels" && ls ./*.tar.gz 2>/dev/null || true)
if [ -n "$sources" ]; then
  # A foreign board without a binary PyAudio wheel: compile it here, against the board's own
  # Python and PortAudio, with build tools that are removed again afterwards.
  build_tools="gcc libc6-dev python3-dev portaudio19-dev"
  say "compiling $(echo $sources | sed 's,\./,,g') in the chroot (apt: $build_tools, removed after)"
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o=Dpkg::Use-Pty=0 \
    --no-install-recommends $build_tools > "$WORK/build-tools.log" 2>&1 \
    || { tail -20 "$WORK/build-tools.log" >&2; exit 1; }
  for source in $sources; do
    chroot "$ROOTFS" /opt/appliance/venv/bin/pip wheel -q --no-index --no-cache-dir \
      --disable-pip-version-check --no-deps --find-links /tmp/wheels -w /tmp/wheels \
      "/tmp/wheels/${source#./}"
    rm -f "$ROOTFS/tmp/wheels/${source#./}"
  done
  chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove \
    -o=Dpkg::Use-Pty=0 $build_tools >> "$WORK/build-tools.log" 2>&1
fi
chroot "$ROOTFS" /opt/appliance/venv/bin/pip install -q --no-index --no-cache-dir \
  --disable-pip-version-check --find-links /tmp/wheels -r /tmp/wheels/requirements.txt
chroot "$ROOTFS" /opt/appliance/venv/bin/pip install -q --no-index --no-cache-dir \
  --disable-pip-version-check --no-deps --find-links /tmp/wheels appliance
rm -rf "$ROOTFS/tmp/wheels"
# The wheel carries its data files (the model catalog, the web page, the demo sample):
# a wheel without them stops the build here rather than the service at first boot.
chroot "$ROOTFS" /opt/appliance/venv/bin/python -c \
  'import appliance.models.catalog as c; c.load_catalog(); print("    catalog:", c.catalog_path())'
ln -sf /opt/appliance/venv/bin/appliance "$ROOTFS/usr/local/bin/appliance"
install -m 0644 "$REPO/README.md" "$ROOTFS/opt/appliance/README.md"
install -d "$ROOTFS/opt/appliance/docs"  # the manual the README links to
install -m 0644 "$REPO"/docs/*.md "$ROOTFS/opt/appliance/docs/"

say "user, groups and the data directory"
chroot "$ROOTFS" systemd-sysusers
mkdir -p "$ROOTFS/data/appliance"
cp -a "$WORK/models" "$ROOTFS/data/appliance/models"
# The image's own defaults (a camera plugged in is used); the page edits this file.
install -m 0640 "$REPO/image-build/defaults/config.toml" "$ROOTFS/data/appliance/config.toml"
chroot "$ROOTFS" systemd-tmpfiles --create /usr/lib/tmpfiles.d/appliance.conf
chroot "$ROOTFS" chown -R appliance:appliance /data/appliance

say "services: appliance, first boot, networkd, avahi; SSH off until appliance.txt asks"
chroot "$ROOTFS" systemctl enable appliance.service appliance-firstboot.service \
  appliance-settings.service systemd-networkd.service avahi-daemon.service >/dev/null 2>&1
chroot "$ROOTFS" systemctl disable ssh.service >/dev/null 2>&1 || true
# Every device makes its own: host keys at first boot, machine id at boot.
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
: > "$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"

if [ "$BOARD" = rpi ]; then
  say "raspi-firmware: kernel, initrd, DTBs, config.txt and cmdline.txt into /boot/firmware"
  # The packages ran this hook before the overlay's /etc/default/raspi-firmware existed, so
  # cmdline.txt named /dev/mmcblk0p2. Run it again as dpkg does ("configure"; without that
  # it does nothing) so it reads our settings: root=LABEL=root, consoles, no cma=.
  version=$(basename "$(ls -d "$ROOTFS"/lib/modules/* | sort -V | tail -1)")
  chroot "$ROOTFS" env DEB_MAINT_PARAMS=configure \
    /etc/kernel/postinst.d/z50-raspi-firmware "$version"
fi
if [ "$BOARD" = rockchip ]; then
  say "extlinux.conf for U-Boot (u-boot-menu)"
  {
    echo 'U_BOOT_ROOT="root=LABEL=root"'
    echo "U_BOOT_PARAMETERS=\"${KERNEL_CMDLINE#root=LABEL=root }\""
  } >> "$ROOTFS/etc/default/u-boot"
  chroot "$ROOTFS" u-boot-update
fi

say "trim: apt lists and caches"
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
