#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: on a fresh Debian 12 machine, install what is needed, build
# nbdws.ko, nbdctl, nbdws-relay and nbdws-serve, then run demo/demo.mjs:
# a test VM of the first target kernel (this machine's own kernel is not
# touched) runs the relay, headless Chromium here serves a disk image to
# it from the page, and the VM mounts it; then nbdws-serve does the same
# with a writable image.
#
#   demo/run.sh [--kernel NAME|KVER]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kernel=()
case "${1:-}" in
--kernel) kernel=(--kernel "$2") ;;
"") ;;
*) echo "usage: demo/run.sh [--kernel NAME|KVER]" >&2; exit 2 ;;
esac
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

echo "==> install dependencies (Debian packages, playwright-core from npm)"
scripts/install-deps.sh
echo "==> build the tools (the module is built for the VM's kernel at boot)"
make -s -j"$(nproc)" tools
exec node demo/demo.mjs "${kernel[@]}"
