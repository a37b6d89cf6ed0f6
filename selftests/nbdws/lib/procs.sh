# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Ending the helper processes a shell selftest started, sourced by them.

# stop_pids PID...: SIGTERM to each, a moment to exit cleanly (and flush
# their logs, which a failed test prints), then SIGKILL to what is left.
# A PID that leads a process group (started with setsid: websockify and
# nbdkit fork) is stopped with its whole group. Any other has no group of
# its number (a script without job control runs its children in its own
# group), so kill -- -PID fails and the process alone is signalled.
stop_pids() {
	local p
	for p in "$@"; do
		kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
	done
	sleep 0.2
	for p in "$@"; do
		kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
	done
}
