#!/bin/bash
# tests/compat/chroot.sh SUITE BUILDDIR - a Debian SUITE (trixie, sid, ...)
# chroot with that release's QEMU, and this tree's shim built inside it, for
# the compatibility matrix (make check-compat, issue 16).  Prints the path of
# a host-side wrapper that runs the chroot's qemu-system-x86_64 as if it were
# installed on the host, so that the host's bhrr and bats suites drive it.
#
# Root only (debootstrap, chroot, mounts); exits 77 (skip) where the machine
# cannot (not root, no mount namespaces, no mirror, debootstrap failed).  The chroot is kept in
# $BHRR_COMPAT_DIR (default /var/cache/bhrr-compat) and reused; it is
# bootstrapped from the Debian mirror the machine's apt sources already name
# (scripts/debian-mirror.sh).  The shim is rebuilt there only when the tree's
# files changed.
#
# The wrapper keeps QEMU's process id (unshare, sh, chroot and env all exec),
# so signals reach QEMU; in a private mount namespace it binds /dev, /tmp,
# $TMPDIR and BUILDDIR (the guests) at the same paths inside, and swaps the host's shim
# in LD_PRELOAD for the one built inside (the host's is linked against the
# host's libraries) - the whole of LD_PRELOAD: other preloads (ASan's
# runtime) are host libraries too - and drops QEMU_MODULE_DIR.
set -euo pipefail
suite=$1 build=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
base=${BHRR_COMPAT_DIR:-/var/cache/bhrr-compat}
c=$base/$suite
say() { echo "compat[$suite]: $*" >&2; }

# What this machine cannot do is a skip (exit 77), said once; what bhrr gets
# wrong is a failure.
[ "$(id -u)" -eq 0 ] || { say "skipped: needs root (debootstrap, chroot, mount)"; exit 77; }
unshare -m --propagation private true 2>/dev/null ||
	{ say "skipped: this machine does not allow a private mount namespace (unshare -m)"; exit 77; }
# in the chroot: its QEMU, and what building the shim needs
pkgs=qemu-system-x86,gcc,make,autoconf,automake,libtool,pkg-config,libcapstone-dev,libxxhash-dev,libunwind-dev
if [ ! -e "$c/.bhrr-ready" ]; then
	command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2 ||
		{ say "skipped: debootstrap is not installed and cannot be"; exit 77; }
	mirror=$("$src/scripts/debian-mirror.sh") || { say "skipped: no Debian mirror in this machine's apt sources"; exit 77; }
	say "bootstrapping $suite from $mirror into $c (once; reused after)"
	rm -rf --one-file-system "$c"
	mkdir -p "$base"
	t0=$(date +%s)
	debootstrap --variant=minbase --include="$pkgs" "$suite" "$c" "$mirror" >"$base/$suite.debootstrap.log" 2>&1 ||
		{ say "skipped: debootstrap of $suite from $mirror failed (network or archive); see $base/$suite.debootstrap.log"; tail -n 5 "$base/$suite.debootstrap.log" >&2; exit 77; }
	touch "$c/.bhrr-ready"
	say "bootstrapped in $(($(date +%s) - t0)) s"
fi

# inchroot CMD: run a shell command in the chroot with /proc mounted
inchroot() {
	unshare -m --propagation private sh -c 'mount -t proc proc "$1/proc" && chroot "$1" sh -c "$2"' sh "$c" "$1"
}

# the shim, from this tree's tracked files, rebuilt when they changed
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 ||
	{ say "skipped: $src is not a git checkout (the chroot's shim is built from its tracked files)"; exit 77; }
tree=$(cd "$src" && git ls-files -z | xargs -0 cat 2>/dev/null | sha1sum | cut -d' ' -f1)
if [ "$(cat "$c/opt/bhrr/.tree" 2>/dev/null)" != "$tree" ] || [ ! -e "$c/opt/bhrr/.libs/libbhrr.so" ]; then
	say "building the shim in the chroot"
	rm -rf "$c/opt/bhrr"
	mkdir -p "$c/opt/bhrr"
	(cd "$src" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$c/opt/bhrr"
	inchroot 'cd /opt/bhrr && autoreconf -fi && ./configure -q && make -j"$(nproc)" libbhrr.la' \
		>"$base/$suite.build.log" 2>&1 || { say "the shim did not build; see $base/$suite.build.log"; exit 1; }
	echo "$tree" >"$c/opt/bhrr/.tree"
fi

# the wrapper, in the build tree it binds (another tree gets its own)
mkdir -p "$build/compat"
w=$build/compat/$suite.qemu-system-x86_64
cat >"$w" <<WRAP
#!/bin/sh
# QEMU of the $suite chroot $c, run as if on the host (tests/compat/chroot.sh)
case "\${LD_PRELOAD:-}" in
*libbhrr*) pre=/opt/bhrr/.libs/libbhrr.so ;;
*) pre= ;;
esac
# the host's paths for the host's QEMUs mean nothing to this one
unset LD_PRELOAD QEMU_MODULE_DIR
exec unshare -m --propagation private sh -c '
	c=\$1 build=\$2 pre=\$3 dir=\$4; shift 4
	mount -t proc proc "\$c/proc" && mount --rbind /dev "\$c/dev" && mount --bind /tmp "\$c/tmp" &&
		mkdir -p "\$c\$build" && mount --bind "\$build" "\$c\$build" || exit 125
	case "\${TMPDIR:-/tmp}" in
	/tmp|/tmp/*) ;;
	*) mkdir -p "\$c\$TMPDIR" && mount --bind "\$TMPDIR" "\$c\$TMPDIR" || exit 125 ;;
	esac
	exec chroot "\$c" sh -c "cd \"\\\$0\" 2>/dev/null || cd /; exec env \${pre:+LD_PRELOAD=\$pre} /usr/bin/qemu-system-x86_64 \"\\\$@\"" "\$dir" "\$@"
' sh "$c" "$build" "\$pre" "\$PWD" "\$@"
WRAP
chmod +x "$w"
echo "$w"
