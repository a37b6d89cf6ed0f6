#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Static checks of the kernel code, as TAP:
#   checkpatch.pl --strict on every kernel-side file (kmod/, common/, uapi/)
#   W=1 build, warning-free, for every target kernel
#   sparse (C=2) on every file, for every target kernel
#
#   lint.sh [--tap FILE] [--checkpatch-only]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tapfile=/dev/stdout only_cp=
while [ $# -gt 0 ]; do
	case "$1" in
	--tap) tapfile=$2; shift 2 ;;
	--checkpatch-only) only_cp=1; shift ;;
	*) echo "usage: lint.sh [--tap FILE] [--checkpatch-only]" >&2; exit 2 ;;
	esac
done

cd "$top" || exit 1
"$top/scripts/kernel-tree-files.sh" || exit 1
n=0 failed=0
tap=()
report() {	# report STATUS DESCRIPTION LOGFILE
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		tap+=("ok $n $2")
	else
		tap+=("not ok $n $2")
		failed=$((failed + 1))
		echo "--- $2 ---" >&2
		cat "$3" >&2
	fi
}

lintdir="$top/build/lint"
mkdir -p "$lintdir"

# checkpatch: the kernel's own, from linux-source-6.1 (see
# scripts/kernel-tree-files.sh). --no-tree: we are not a kernel tree.
files=$(ls kmod/*.[ch] kmod/probes/*.c common/*.[ch] uapi/linux/*.h 2>/dev/null)
log="$lintdir/checkpatch.log"
# shellcheck disable=SC2086
perl build/linux-tools/scripts/checkpatch.pl --strict --no-tree --terse \
	--show-types -f $files > "$log" 2>&1
grep -Eq '(ERROR|WARNING|CHECK):' "$log"
report $(( $? == 0 )) "checkpatch --strict ($(echo "$files" | wc -w) files)" "$log"

if [ -z "$only_cp" ]; then
	while read -r name kver root; do
		# An unpacked kernel's build tree is inside its root.
		kdir=/lib/modules/$kver/build rootarg=()
		[ -z "$root" ] || rootarg=(--root "$root")
		out="$lintdir/$kver"
		# A fresh staging dir: every file is compiled, so every
		# warning shows up.
		rm -rf "$out"
		log="$out/w1.log"
		mkdir -p "$out"
		"$top/scripts/build-module.sh" --kdir "$kdir" "${rootarg[@]}" \
			--out "$out" --log "$log" W=1
		rc=$?
		[ $rc = 0 ] && grep -Eq '(warning|error):' "$log" && rc=1
		report $rc "W=1 build without warnings ($name: $kver)" "$log"

		log="$out/sparse.log"
		# Without make's flags: under `make -s lint` kbuild would
		# print no CHECK lines, and the check below would fail.
		MAKEFLAGS='' MFLAGS='' "$top/scripts/build-module.sh" --kdir "$kdir" \
			"${rootarg[@]}" --out "$out" --log "$log" W=1 C=2
		rc=$?
		[ $rc = 0 ] && grep -Eq '(warning|error):' "$log" && rc=1
		# Kbuild only warns, in words of its own, when it finds no
		# working sparse: then nothing was checked.
		grep -q '^  CHECK ' "$log" || rc=1
		report $rc "sparse clean ($name: $kver)" "$log"
	done < "$top/build/kernels.list"
fi

{
	printf '%s\n' "${tap[@]}"
	echo "1..$n"
} > "$tapfile"
[ "$failed" = 0 ]
