#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: on a fresh Debian 12 machine, install what is needed, build
# nbdws.ko and nbdctl, boot a test VM of the default target kernel (this
# machine's own kernel is not touched) and run demo/guest.sh in it: a disk
# image served by an NBD server behind a WebSocket becomes /dev/nbdwsN.
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

scripts/install-deps.sh
make -s tools
exec scripts/vm.sh "${kernel[@]}" --timeout 900 --cmd "bash $top/demo/guest.sh"
