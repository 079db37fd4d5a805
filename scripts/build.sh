#!/bin/sh
# build.sh [CONFIGURE ARGS...] - bootstrap (autoreconf) if needed, configure
# if needed, and build.  Run from anywhere; builds in the source tree.
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi
[ -f Makefile ] && [ $# -eq 0 ] || ./configure "$@"
make -j"$(nproc)"
