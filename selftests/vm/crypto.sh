# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Sourced by the VM jobs (selftests/vm/guest-run.sh, bench/guest.sh).
#
# On a normally booted machine udev loads the CPU's crypto drivers from
# its modalias. The test VMs have no udev, and Debian builds the generic
# AES in (CONFIG_CRYPTO_AES=y), so nothing ever asks for aesni_intel:
# the kernel's TLS (kTLS, every wss:// connection) ran AES-GCM in plain C
# while OpenSSL in userspace, probing the CPU itself, used AES-NI. Load
# them as udev would, where the CPU (TCG's -cpu max has both) has the
# instructions; the crypto API then prefers them by priority.

# guest_crypto_load: what could not be loaded goes to stderr; 0 if both
# loaded (or, for GHASH, the kernel has no module for it).
guest_crypto_load() {
	local rc=0
	if grep -qw aes /proc/cpuinfo; then
		modprobe aesni_intel || rc=1
	else
		echo "crypto: the CPU has no AES-NI: generic AES" >&2
		rc=1
	fi
	if ! grep -qw pclmulqdq /proc/cpuinfo; then
		echo "crypto: the CPU has no PCLMULQDQ: generic GHASH" >&2
		rc=1
	elif modprobe -n -q ghash-clmulni-intel; then
		modprobe ghash-clmulni-intel || rc=1
	else
		# 7.x has no such module: GHASH is the crypto library's,
		# its PCLMULQDQ code built in (CRYPTO_LIB_GF128HASH_ARCH).
		echo "crypto: no ghash-clmulni-intel: the kernel's own GHASH" >&2
	fi
	return $rc
}

# guest_crypto_driver NAME: the driver the crypto API picks for NAME
# (the highest priority one that passed its self-test, as
# crypto_alg_lookup() does), e.g. "aes" -> aes-aesni, "gcm(aes)" ->
# generic-gcm-aesni. An algorithm appears in /proc/crypto once
# registered; a template instance such as gcm(aes) only once something
# asked for it. Prints "none" when nothing is registered under NAME.
guest_crypto_driver() {
	awk -v want="$1" '
	function flush() {
		if (name == want && test != "failed" && prio > best) {
			best = prio
			pick = driver
		}
		name = driver = test = ""
		prio = -1
	}
	BEGIN { best = -1; pick = "none"; prio = -1 }
	/^$/ { flush(); next }
	{
		k = $1
		v = $0
		sub(/^[^:]*: /, "", v)
		if (k == "name") name = v
		else if (k == "driver") driver = v
		else if (k == "priority") prio = v + 0
		else if (k == "selftest") test = v
	}
	END { flush(); print pick }' /proc/crypto
}
