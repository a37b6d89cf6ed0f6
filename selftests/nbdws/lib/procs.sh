# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Ending the helper processes a shell selftest started, sourced by them.

# stop_pids PID...: SIGTERM to each, a moment to exit cleanly (and flush
# their logs, which a failed test prints), then SIGKILL to what is left.
stop_pids() {
	local p
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.2
	for p in "$@"; do
		kill -KILL "$p" 2>/dev/null
	done
}
