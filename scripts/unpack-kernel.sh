#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A target kernel from a Debian suite newer than this machine's (sid), made
# usable without installing any of that suite's packages here. Prints the
# root it prepared:
#
#   unpack-kernel.sh SUITE KVER      ->  /var/cache/nbdws/kernels/KVER
#
# The kernel's kbuild tools (fixdep, modpost, objtool) are linked against
# the suite's newer glibc and its headers name a newer compiler (gcc-16 for
# 7.2), neither of which runs or exists on bookworm. So the root is a
# minimal debootstrap of SUITE, in which the headers package (and with it
# kbuild and the compiler), dkms and sparse are installed by its own apt;
# modules are built inside it (scripts/in-root.sh). The image and modules
# are only unpacked into it (dpkg -x: no initramfs hooks) and indexed with this
# machine's depmod, whose modprobe the test VM runs:
#
#   ROOT/boot/vmlinuz-KVER           what the VM boots
#   ROOT/usr/lib/modules/KVER        its modules (the VM mounts them over
#                                    /lib/modules); build -> the headers
#
# Done once per KVER (about 4 minutes, 700 MB on disk), then instant:
# ROOT/.nbdws-ready marks a finished root. NBDWS_KERNEL_CACHE moves the
# cache; NBDWS_MIRROR names the Debian mirror.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: unpack-kernel.sh SUITE KVER" >&2; exit 2; }
suite=$1 kver=$2
cache=${NBDWS_KERNEL_CACHE:-/var/cache/nbdws/kernels}
mirror=${NBDWS_MIRROR:-http://deb.debian.org/debian}
root=$cache/$kver
ready=$root/.nbdws-ready

if [ -f "$ready" ]; then
	echo "$root"
	exit 0
fi
mkdir -p "$cache"
exec 8> "$cache/$kver.lock"
flock 8
if [ -f "$ready" ]; then
	echo "$root"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || {
	echo "unpack-kernel: must run as root (debootstrap, chroot)" >&2; exit 1; }

log=$cache/$kver.log
tmp=$cache/.$kver.tmp
rm -rf "$tmp" "$root"
echo "unpack-kernel: preparing $kver from $suite in $root (log: $log)" >&2
{
	debootstrap --variant=minbase --include=make,xz-utils,kmod \
		"$suite" "$tmp" "$mirror"
	in_tmp() { chroot "$tmp" env DEBIAN_FRONTEND=noninteractive "$@"; }
	in_tmp apt-get install -y -q --no-install-recommends \
		"linux-headers-$kver" dkms sparse
	# The image package only depends on the ones holding vmlinuz and
	# modules (linux-binary-, linux-modules-): unpack those, or the
	# image itself where it holds them.
	mapfile -t pkgs < <(in_tmp apt-cache depends "linux-image-$kver" |
		awk -v k="$kver" '$1 == "Depends:" && index($2, k) &&
				  $2 !~ /^linux-base/ { print $2 }')
	mkdir -p "$tmp/var/cache/nbdws-debs"
	in_tmp sh -c 'cd /var/cache/nbdws-debs &&
		      apt-get download -o APT::Sandbox::User=root "$@"' - \
		"linux-image-$kver" "${pkgs[@]}"
	for deb in "$tmp"/var/cache/nbdws-debs/*.deb; do
		dpkg -x "$deb" "$tmp"
	done
	rm -rf "$tmp/var/cache/nbdws-debs"
	in_tmp apt-get clean
	# Debian's kbuild package lacks the script with which the kernel's
	# Makefile asks whether sparse works; without it C=1/C=2 silently
	# check nothing. Ours: sparse works if it accepts an empty unit
	# with the flags the Makefile passes.
	kb=$(readlink -f "$tmp/usr/lib/modules/$kver/build/scripts" ||
	     true)
	if [ -d "$kb" ] && [ ! -e "$kb/checker-valid.sh" ]; then
		cat > "$kb/checker-valid.sh" <<'CHK'
#!/bin/sh
# Added by nbdws' unpack-kernel.sh: missing from Debian's kbuild package.
command -v "$1" > /dev/null || exit 1
f=$(mktemp --suffix=.c) || exit 1
echo 'int nbdws_checker_valid;' > "$f"
"$@" "$f" > /dev/null 2>&1 && echo 1
rm -f "$f"
CHK
		chmod 755 "$kb/checker-valid.sh"
	fi
	mkdir -p "$tmp/boot"
	[ -e "$tmp/boot/vmlinuz-$kver" ] ||
		ln -s "../usr/lib/modules/$kver/vmlinuz" "$tmp/boot/vmlinuz-$kver"
	depmod -b "$tmp/usr" "$kver"
} > "$log" 2>&1 || {
	echo "unpack-kernel: failed; last lines of $log:" >&2
	tail -n 20 "$log" >&2
	exit 1
}
for f in "boot/vmlinuz-$kver" "usr/lib/modules/$kver/modules.dep" \
	 "usr/lib/modules/$kver/kernel/net/tls" \
	 "usr/lib/modules/$kver/build/Makefile"; do
	[ -e "$tmp/$f" ] || { echo "unpack-kernel: $f missing in $tmp" >&2; exit 1; }
done
mv "$tmp" "$root"
echo "$suite $kver" > "$ready"
echo "$root"
