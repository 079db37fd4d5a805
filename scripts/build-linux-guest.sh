#!/bin/sh
# build-linux-guest.sh DEST - the Linux test guest from Debian packages only:
# the bookworm kernel (linux-image-amd64's dependency) and busybox-static,
# fetched with 'apt-get download' and unpacked, and an initramfs holding
# busybox, the block, network and entropy driver modules and
# tests/guest/linux/init.
# Produces DEST/vmlinuz, DEST/initrd.gz and DEST/.stamp.
set -eu
dest=$1
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dest/debs"
dest=$(cd "$dest" && pwd)

kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "build-linux-guest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
cd "$dest/debs"
ls "$kpkg"_*.deb >/dev/null 2>&1 || apt-get -q -o APT::Sandbox::User=root download "$kpkg"
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get -q -o APT::Sandbox::User=root download busybox-static
rm -rf "$dest/root" "$dest/initramfs"
for d in "$kpkg"_*.deb busybox-static_*.deb; do dpkg-deb -x "$d" "$dest/root"; done

kver=${kpkg#linux-image-}
moddir="$dest/root/lib/modules/$kver"
ird="$dest/initramfs"
mkdir -p "$ird/bin" "$ird/lib/modules" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/tmp"
cp "$dest/root/bin/busybox" "$ird/bin/busybox"
bb="$dest/root/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$ird/bin/$a"; done
install -m 755 "$src/tests/guest/linux/init" "$ird/init"

# The modules for ata_piix and virtio_blk, dependencies first.  The package
# ships no modules.dep (depmod makes it at install): make it with busybox.
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
# crc-t10dif (for sd_mod) needs a crct10dif provider loaded first.  The
# CI-shaped runs add a virtio NIC, a virtio-rng and a virtio-serial port.
for m in ata_piix crct10dif_generic sd_mod virtio_pci virtio_blk virtio_net virtio-rng virtio_console; do
	add_module "$m"
done
cp "$moddir/modules.dep" "$ird/lib/modules/$kver/"

(cd "$ird" && find . | "$bb" cpio -o -H newc 2>/dev/null) | gzip -9 >"$dest/initrd.gz"
cp "$dest/root/boot/vmlinuz-$kver" "$dest/vmlinuz"
echo "build-linux-guest: $kver, modules: $(tr '\n' ' ' <"$ird/modules.order")"
touch "$dest/.stamp"
