#!/bin/sh
# fetch-qemu.sh DEST [VERSION] - unpack Debian 12's backported QEMU (10.0 by
# default) into DEST without installing it, so the tests can run it beside
# the system QEMU 7.2.  DEST/root holds the unpacked packages; DEST/env is a
# shell fragment setting QEMU_BIN, QEMU_FIRMWARE (the -L arguments),
# QEMU_MODULE_DIR, and QEMU_BIN_AARCH64 and QEMU_BIN_RISCV64 (the other
# boards the tests run).  Downloads with 'apt-get download' (scripts/setup-debian.sh
# enables bookworm-backports); reuses DEST/debs when already fetched.
set -eu

dest=$1
want=${2:-10.0}
pkgs="qemu-system-x86 qemu-system-common qemu-system-data qemu-system-arm qemu-system-riscv"

mkdir -p "$dest/debs"
dest=$(cd "$dest" && pwd)

# The newest backports version of QEMU $want.
ver=$(apt-cache madison qemu-system-x86 | awk -v w="$want" -F' *[|] *' \
	'$2 ~ ("^1:" w "\\.") && $3 ~ /backports/ { print $2; exit }')
if [ -z "$ver" ]; then
	echo "fetch-qemu: no QEMU $want in bookworm-backports; run scripts/setup-debian.sh (it enables backports and runs apt-get update)" >&2
	exit 1
fi
bios=$(apt-cache madison seabios | awk -F' *[|] *' '$3 ~ /backports/ { print $2; exit }')

cd "$dest/debs"
args=
for p in $pkgs; do
	ls "${p}"_*.deb >/dev/null 2>&1 || args="$args $p=$ver"
done
[ -n "$bios" ] && ! ls seabios_*.deb >/dev/null 2>&1 && args="$args seabios=$bios"
if [ -n "$args" ]; then
	# _apt cannot write into a root-owned build tree: download as ourselves.
	apt-get -q -o APT::Sandbox::User=root download $args
fi
rm -rf "$dest/root"
for d in *.deb; do dpkg-deb -x "$d" "$dest/root"; done

bin="$dest/root/usr/bin/qemu-system-x86_64"
"$bin" -version >/dev/null
cat > "$dest/env" <<ENV
QEMU_BIN='$bin'
QEMU_FIRMWARE='-L $dest/root/usr/share/seabios -L $dest/root/usr/share/qemu'
QEMU_MODULE_DIR='$dest/root/usr/lib/x86_64-linux-gnu/qemu'
export QEMU_MODULE_DIR
QEMU_BIN_AARCH64='$dest/root/usr/bin/qemu-system-aarch64'
QEMU_BIN_RISCV64='$dest/root/usr/bin/qemu-system-riscv64'
ENV
echo "fetch-qemu: $("$bin" -version | head -n 1) in $dest"
touch "$dest/.stamp"
