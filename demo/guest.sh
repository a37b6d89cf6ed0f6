#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo, the test VM's side: what demo/demo.mjs on the host asks the
# VM to do, one subcommand each (through tests/browser/vm-agent.sh). The
# relay, devices and checks are tests/browser/guest.sh's; this adds the
# demo's own steps.
#
#   bash demo/guest.sh SUBCOMMAND [ARGS...]
. "$(dirname "${BASH_SOURCE[0]}")/../tests/browser/guest.sh"

# write-new DEV FILE SUMS: mount DEV read-write, write FILE (random data
# and a line of text) on it, note its SHA-256 in SUMS, unmount.
write-new() {
	local dev=$1 name=$2 sums=$3 mnt=/tmp/mnt-rw rc
	mkdir -p "$mnt"
	mount "$dev" "$mnt" || return 1
	echo "mounted $dev read-write on $mnt:"
	df -h "$mnt" | tail -n 1
	{
		echo "Written in the VM at $(date -u +%FT%TZ) through $dev,"
		echo "served by nbdws-serve --writable from the host."
		head -c 2M /dev/urandom
	} > "$mnt/$name"
	(cd "$mnt" && sha256sum "$name") > "$sums"
	rc=$?
	ls -l "$mnt"
	cat "$sums"
	umount "$mnt" || rc=1
	echo "unmounted (the file system's writes and flushes went to the host)"
	return $rc
}

# kernel-clean: no oops, BUG, WARNING or hung task in the guest's log.
kernel-clean() {
	if dmesg | grep -E 'Oops|BUG[: ]|WARNING:|Call Trace|hung_task|blocked for more than'; then
		echo "the guest kernel's log has errors"
		return 1
	fi
	echo "the guest kernel's log is clean"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ $# -gt 0 ] || { echo "usage: demo/guest.sh SUBCOMMAND [ARGS...]" >&2; exit 2; }
	"$@"
fi
