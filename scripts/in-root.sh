#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a command inside the root of an unpacked kernel (scripts/
# unpack-kernel.sh), with this tree and any further DIRs visible there at
# the same paths, so paths need no translating:
#
#   in-root.sh ROOT [--bind DIR]... -- COMMAND [ARG]...
#
# The binds live in a mount namespace of their own (unshare -m): they
# vanish with the command, even when it is killed, and never show on the
# host. With ROOT empty the command runs here as it is.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
root=$1
shift
binds=("$top")
while [ $# -gt 0 ]; do
	case "$1" in
	--bind) binds+=("$(realpath -m "$2")"); shift 2 ;;
	--) shift; break ;;
	*) echo "usage: in-root.sh ROOT [--bind DIR]... -- COMMAND [ARG]..." >&2
	   exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "in-root.sh: no command" >&2; exit 2; }

[ -n "$root" ] || exec "$@"
[ -f "$root/.nbdws-ready" ] || {
	echo "in-root.sh: $root is not a prepared kernel root" >&2; exit 1; }

# Inside the namespace: bind each directory not already shown by the
# bind of a parent, then chroot, keeping the caller's working directory.
# shellcheck disable=SC2016
exec unshare -m --propagation private -- bash -c '
	set -e
	root=$1 n=$2
	shift 2
	done=()
	for d in "${@:1:$n}"; do
		for b in "${done[@]}"; do
			case "$d/" in "$b"/*) continue 2 ;; esac
		done
		mkdir -p "$root$d"
		mount --bind "$d" "$root$d"
		done+=("$d")
	done
	shift "$n"
	# objtool reads its limits from /proc; make and sh want /dev/null.
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	cwd=$(pwd)
	exec chroot "$root" sh -c "cd \"\$1\" 2>/dev/null || cd /; shift; exec \"\$@\"" - "$cwd" "$@"
' - "$root" "${#binds[@]}" "${binds[@]}" "$@"
