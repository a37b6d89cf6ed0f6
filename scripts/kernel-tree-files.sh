#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the few kernel-tree files nbdws uses but must not commit from
# Debian's linux-source-6.1 tarball into build/:
#   build/kselftest/{kselftest_harness.h,kselftest.h}   (selftests, unit tests)
#   build/linux-tools/scripts/checkpatch.pl (+ its data files)
# One pass over the tarball; a stamp keeps later calls instant.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tarball=${LINUX_SOURCE_TARBALL:-$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)}
out="$top/build"
stamp="$out/linux-tools/.extracted"

[ -f "$stamp" ] && [ "$stamp" -nt "$0" ] && exit 0
if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
	echo "kernel-tree-files: linux-source-6.1 not installed (run scripts/install-deps.sh)" >&2
	exit 1
fi

tmp=$(mktemp -d "$out/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=linux-source-6.1
tar -xf "$tarball" -C "$tmp" \
	"$src/tools/testing/selftests/kselftest_harness.h" \
	"$src/tools/testing/selftests/kselftest.h" \
	"$src/scripts/checkpatch.pl" \
	"$src/scripts/spelling.txt" \
	"$src/scripts/const_structs.checkpatch"

mkdir -p "$out/kselftest" "$out/linux-tools/scripts"
cp "$tmp/$src"/tools/testing/selftests/kselftest*.h "$out/kselftest/"
cp "$tmp/$src"/scripts/{checkpatch.pl,spelling.txt,const_structs.checkpatch} \
	"$out/linux-tools/scripts/"
touch "$out/kselftest"/*.h
touch "$stamp"
