#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The browser tests for one target kernel (scripts/check.sh runs this per
# kernel): tests/browser/e2e.mjs boots the kernel's test VM with the relay
# and drives Debian's Chromium and Firefox ESR here against it, one after
# the other. TAP on standard output;
# screenshots, the VM's console log and the guest's dmesg in
# build/browser/KVER.
#
#   tests/browser/run.sh [--kernel NAME|KVER]
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
kernel=()
case "${1:-}" in
--kernel) kernel=(--kernel "$2") ;;
"") ;;
*) echo "usage: tests/browser/run.sh [--kernel NAME|KVER]" >&2; exit 2 ;;
esac
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

for f in /usr/bin/chromium /usr/bin/firefox-esr \
	 "$top/build/npm/node_modules/playwright-core/package.json" \
	 "$top/build/npm/node_modules/puppeteer-core/package.json" \
	 "$top/build/nbdws-relay" "$top/web/index.html"; do
	# scripts/install-deps.sh and make tools provide these: missing is
	# a failure, not a reason to skip.
	[ -e "$f" ] || { printf 'not ok 1 %s is missing (make deps tools)\n1..1\n' "$f"; exit 1; }
done
command -v node > /dev/null || { printf 'not ok 1 no node\n1..1\n'; exit 1; }
exec node tests/browser/e2e.mjs "${kernel[@]}"
