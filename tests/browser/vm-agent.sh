#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest's half of the host <-> guest coordination used by make demo
# and the browser tests (tests/browser/lib/vm.mjs is the host's half).
# Runs as the test VM's job: loads nbdws.ko, says it is ready, then runs
# the commands the host drops into a folder of the writable tree, which
# the guest sees at the same path as the host:
#
#   DIR/ready          written by the guest once it takes commands
#   DIR/cmd.N          bash, written (atomically) by the host, N = 1, 2, ...
#   DIR/out.N, rc.N    its output and exit status; rc.N appears last
#   DIR/cmd.N = "quit" ends the agent and so the VM
#
# A command runs in the tree with the environment below; a daemon it
# starts must detach (setsid, output to a file). With no command for
# AGENT_IDLE seconds (default 900) the agent gives up, so a host that
# died does not leave a VM behind.
#
# Environment: NBDWS_TOP, NBDWS_KO, AGENT_DIR (from the job file).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export NBDCTL="$NBDWS_TOP/build/nbdctl" TMPDIR=/tmp
export PATH="$NBDWS_TOP/build:$PATH"
cd "$NBDWS_TOP" || exit 1
dir=$AGENT_DIR

put() {	# put FILE TEXT: atomically, so the host never sees half of it
	printf '%s\n' "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"
}

ip link set lo up
echo 60 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
modprobe ext4 2>/dev/null
if [ -n "${NBDWS_KO:-}" ] && ! insmod "$NBDWS_KO"; then
	put "$dir/ready" "error: insmod $NBDWS_KO failed"
	exit 1
fi
put "$dir/ready" "ok $(uname -r)"

n=1
idle=$SECONDS
while :; do
	f=$dir/cmd.$n
	if [ ! -f "$f" ]; then
		if [ $((SECONDS - idle)) -ge "${AGENT_IDLE:-900}" ]; then
			echo "vm-agent: no command for ${AGENT_IDLE:-900} s, giving up"
			break
		fi
		sleep 0.1
		continue
	fi
	[ "$(cat "$f")" = quit ] && break
	bash "$f" > "$dir/out.$n" 2>&1 < /dev/null
	put "$dir/rc.$n" "$?"
	n=$((n + 1))
	idle=$SECONDS
done

# What the host wants to judge after the VM is gone.
dmesg > "$dir/dmesg.txt"
sync
