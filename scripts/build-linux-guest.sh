#!/bin/sh
# build-linux-guest.sh DEST [ARCH] - the Linux test guest from Debian
# packages only: the bookworm kernel for ARCH (amd64, the default, or arm64:
# linux-image-ARCH's dependency) and busybox-static, fetched with 'apt-get
# download' and unpacked (never installed), and an initramfs holding
# busybox, the block (and, on amd64, network and entropy) driver modules and
# tests/guest/linux/init.  A foreign ARCH needs it added to dpkg
# (scripts/setup-debian.sh adds arm64); the host's own busybox-static,
# unpacked beside it, does the host-side work (applet list, depmod, cpio).
# Produces DEST/vmlinuz (on arm64 an uncompressed Image, what QEMU's
# -kernel boots on -M virt), DEST/initrd.gz and DEST/.stamp.
set -eu
dest=$1
arch=${2:-amd64}
host=$(dpkg --print-architecture)
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dest/debs"
dest=$(cd "$dest" && pwd)

kpkg=$(apt-cache depends "linux-image-$arch:$arch" | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
kpkg=${kpkg%:*}
[ -n "$kpkg" ] || { echo "build-linux-guest: cannot resolve linux-image-$arch:$arch (run scripts/setup-debian.sh: it adds arm64 and runs apt-get update)" >&2; exit 1; }
cd "$dest/debs"
# fetch PACKAGE ARCH: its .deb for ARCH, unless already here
fetch() {
	ls "$1_"*"_$2.deb" >/dev/null 2>&1 || apt-get -q -o APT::Sandbox::User=root download "$1:$2"
}
fetch "$kpkg" "$arch"
fetch busybox-static "$arch"
fetch busybox-static "$host"
rm -rf "$dest/root" "$dest/host" "$dest/initramfs"
for d in "$kpkg"_*"_$arch.deb" busybox-static_*"_$arch.deb"; do dpkg-deb -x "$d" "$dest/root"; done
dpkg-deb -x busybox-static_*"_$host.deb" "$dest/host"

kver=${kpkg#linux-image-}
moddir="$dest/root/lib/modules/$kver"
ird="$dest/initramfs"
mkdir -p "$ird/bin" "$ird/lib/modules" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/tmp"
cp "$dest/root/bin/busybox" "$ird/bin/busybox"
bb="$dest/host/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$ird/bin/$a"; done
install -m 755 "$src/tests/guest/linux/init" "$ird/init"

# The driver modules, dependencies first.  The package ships no modules.dep
# (depmod makes it at install): make it with busybox.
[ -f "$moddir/modules.dep" ] || "$bb" depmod -b "$dest/root" "$kver"
: >"$ird/modules.order"
add_module() {
	local path dep
	path=$(awk -F: -v m="/$1.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m { print $1; exit }' "$moddir/modules.dep")
	[ -n "$path" ] || { echo "build-linux-guest: no module $1" >&2; exit 1; }
	grep -qx "$1" "$ird/modules.order" && return 0
	for dep in $(awk -F: -v p="$path" '$1 == p { print $2 }' "$moddir/modules.dep"); do
		add_module "$(basename "$dep" .ko)"
	done
	mkdir -p "$ird/lib/modules/$kver/$(dirname "$path")"
	cp "$moddir/$path" "$ird/lib/modules/$kver/$path"
	echo "$1" >>"$ird/modules.order"
}
case "$arch" in
# crc-t10dif (for sd_mod) needs a crct10dif provider loaded first.  The
# CI-shaped runs add a virtio NIC, a virtio-rng and a virtio-serial port.
# virtio-9p shares: 9pnet_virtio and 9p.
amd64) modules="ata_piix crct10dif_generic sd_mod virtio_pci virtio_blk virtio_net virtio-rng virtio_console 9pnet_virtio 9p" ;;
# -M virt's two virtio-blk disks, on virtio-mmio or virtio-pci: Debian's
# arm64 config has all three as modules (the PCI host, the PL011 console
# and the PL031 RTC are built in).
arm64) modules="virtio_mmio virtio_pci virtio_blk" ;;
*) echo "build-linux-guest: no module list for $arch" >&2; exit 1 ;;
esac
for m in $modules; do
	add_module "$m"
done
cp "$moddir/modules.dep" "$ird/lib/modules/$kver/"

(cd "$ird" && find . | "$bb" cpio -o -H newc 2>/dev/null) | gzip -9 >"$dest/initrd.gz"
kimg="$dest/root/boot/vmlinuz-$kver"
case "$arch" in
arm64)
	# QEMU's -kernel boots a plain (or gzipped) arm64 Image on -M virt, not
	# an EFI zboot one; bookworm's is plain ("ARMd" at 0x38).  Store it plain.
	if [ "$(od -An -c -j 0 -N 2 "$kimg" | tr -d ' ')" = '037213' ]; then
		gzip -dc "$kimg" >"$dest/vmlinuz"
	else
		cp "$kimg" "$dest/vmlinuz"
	fi
	[ "$(od -An -c -j 56 -N 4 "$dest/vmlinuz" | tr -d ' ')" = ARMd ] ||
		{ echo "build-linux-guest: $kimg is not an arm64 Image (EFI zboot?)" >&2; exit 1; } ;;
*) cp "$kimg" "$dest/vmlinuz" ;;
esac
echo "build-linux-guest: $arch $kver, modules: $(tr '\n' ' ' <"$ird/modules.order")"
touch "$dest/.stamp"
