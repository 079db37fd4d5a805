#!/bin/sh
# Install every Debian 12 package that bhrr's build, tests and benchmarks need.
# Idempotent; runs as root or through sudo.  Adds the arm64 architecture
# (package lists only, for the aarch64 Linux tier's downloads).  Also enables bookworm-backports
# (at its default low pin, so nothing installed is upgraded from it) because
# scripts/fetch-qemu.sh downloads QEMU 10.0 from there: from the mirror the
# machine's apt sources already name, never a hard-coded archive host.
set -eu

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi

PACKAGES="
autoconf automake libtool pkg-config make gcc clang binutils
libcapstone-dev libxxhash-dev libunwind-dev
bats valgrind jq stress-ng python3 iproute2 gdb
qemu-system-x86 qemu-utils qemu-system-arm qemu-system-misc
gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu
libaio1 libbpf1 libfuse3-3 libibverbs1 libnuma1 libpmem1 librdmacm1
libvdeplug2 liburing2 libslirp0 libfdt1
"

list=/etc/apt/sources.list.d/bhrr-backports.list
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	mirror=$("$(dirname "$0")/debian-mirror.sh" || true)
	if [ -z "$mirror" ]; then
		echo "setup-debian: no configured Debian source for bookworm found in /etc/apt; add bookworm-backports from your mirror by hand" >&2
		exit 1
	fi
	echo "setup-debian: enabling bookworm-backports from $mirror"
	echo "deb $mirror bookworm-backports main" | $SUDO tee "$list" >/dev/null
fi

missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
		|| missing="$missing $p"
done

# The aarch64 Linux tier (scripts/build-linux-guest.sh DEST arm64) downloads
# Debian's arm64 kernel and busybox-static with 'apt-get download' and
# unpacks them: apt needs arm64's package lists, so the architecture is
# added.  Only added: nothing for arm64 is ever installed.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	echo "setup-debian: adding the arm64 architecture (its package lists only)"
	$SUDO dpkg --add-architecture arm64
fi

# Always refresh the lists once: backports must be known to fetch-qemu.sh,
# and arm64's lists to build-linux-guest.sh.
stamp=/var/lib/apt/periodic/bhrr-update-stamp
if [ -n "$missing" ] || [ ! -e "$stamp" ] || ! apt-cache madison qemu-system-x86 | grep -q bpo12 ||
	! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
	$SUDO apt-get update -q
	$SUDO mkdir -p "$(dirname "$stamp")" && $SUDO touch "$stamp"
fi
if [ -n "$missing" ]; then
	echo "setup-debian: installing$missing"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
echo "setup-debian: all packages present"
