#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) the debug kernel `make check-debug` runs the selftests on:
# Debian's linux-source-6.1, x86_64 defconfig plus
# selftests/vm/debug-kernel.config (KASAN, lockdep, kmemleak, UBSAN,
# debug objects; virtio/9p built in; nbd, tls, veth, netem as modules).
#
#   debug-kernel.sh [--cache DIR] [--print-dir]
#
# The result lives outside the tree, in CACHE/<key> (default CACHE
# /var/cache/nbdws/debug-kernel), key = hash of the config fragment and of
# the source package's version, so `git clean` never costs a 20-minute
# rebuild and a changed fragment never reuses a stale kernel:
#   KEY/src                  the built tree (also the --kdir for nbdws.ko)
#   KEY/bzImage              the kernel vmlinuz
#   KEY/lib/modules/KVER     its modules (the VM mounts KEY/lib/modules
#                            over /lib/modules, so modprobe finds them)
#   KEY/kver                 the kernel release, written last: its
#                            presence means the build is complete
# Prints "KVER KEY-DIR" on stdout when the kernel is ready. The build runs
# under nice -n 19: the machine is shared.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${NBDWS_DEBUG_KERNEL_CACHE:-/var/cache/nbdws/debug-kernel}
print_dir=
while [ $# -gt 0 ]; do
	case "$1" in
	--cache) cache=$2; shift 2 ;;
	--print-dir) print_dir=1; shift ;;
	*) echo "usage: debug-kernel.sh [--cache DIR] [--print-dir]" >&2; exit 2 ;;
	esac
done

frag="$top/selftests/vm/debug-kernel.config"
tarball=/usr/src/linux-source-6.1.tar.xz
[ -r "$tarball" ] || "$top/scripts/install-deps.sh"
[ -r "$tarball" ] || { echo "debug-kernel: $tarball missing" >&2; exit 1; }
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { cat "$frag"; echo "linux-source-6.1 $srcver"; } | sha256sum | cut -c1-16)
dir="$cache/$key"

if [ -n "$print_dir" ]; then
	echo "$dir"
	exit 0
fi
if [ -s "$dir/kver" ]; then
	echo "$(cat "$dir/kver") $dir"
	exit 0
fi

mkdir -p "$cache"
# make check-debug may be started twice: one build per key at a time; the
# second waits and then finds the kernel ready.
exec 9> "$cache/$key.lock"
flock 9
if [ -s "$dir/kver" ]; then
	echo "$(cat "$dir/kver") $dir"
	exit 0
fi

log="$cache/$key.log"
echo "debug-kernel: building $key from linux-source-6.1 $srcver (about 20 min on 2 cores; log $log)" >&2
start=$(date +%s)
# An interrupted build resumes: the tree is complete once it is named src
# (extracted under another name first), and kbuild rebuilds only what is
# missing or out of date.
if [ ! -f "$dir/src/Makefile" ]; then
	rm -rf "$dir"
	mkdir -p "$dir/extract"
	tar -xJf "$tarball" -C "$dir/extract"
	mv "$dir/extract/linux-source-6.1" "$dir/src"
	rmdir "$dir/extract"
fi

# Every build step into the log; the log's tail on failure.
run() {
	"$@" >> "$log" 2>&1 || {
		echo "debug-kernel: failed: $* (last lines of $log)" >&2
		tail -n 30 "$log" >&2
		exit 1; }
}
: > "$log"
cd "$dir/src"
run make defconfig
run scripts/kconfig/merge_config.sh -m .config "$frag"
run make olddefconfig

# A fragment line Kconfig dropped (a dependency missing, a name that does
# not exist in 6.1) would silently give a kernel without that checker:
# refuse it instead.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) opt=${line%%=*}
		if grep -q "^$opt=[ym]" .config; then
			echo "debug-kernel: $opt is set although the fragment turns it off" >&2
			missing=1
		fi ;;
	CONFIG_*=*)
		if ! grep -qxF "$line" .config; then
			echo "debug-kernel: '$line' did not survive olddefconfig: $(grep "^${line%%=*}=\|^# ${line%%=*} is not set" .config || echo absent)" >&2
			missing=1
		fi ;;
	esac
done < "$frag"
[ "$missing" = 0 ] || exit 1

run nice -n 19 make -j"$(nproc)" bzImage modules
run nice -n 19 make modules_install INSTALL_MOD_PATH="$dir" INSTALL_MOD_STRIP=1
kver=$(make -s kernelrelease)
cp arch/x86/boot/bzImage "$dir/bzImage"
# The build tree is the module build directory; keep the link kbuild
# expects, pointing at it even if the cache moves.
ln -sfn ../../../src "$dir/lib/modules/$kver/build"
ln -sfn ../../../src "$dir/lib/modules/$kver/source"
echo "$kver" > "$dir/kver.new"
mv "$dir/kver.new" "$dir/kver"
echo "debug-kernel: $kver built in $(( $(date +%s) - start )) s" | tee -a "$log" >&2
echo "$kver $dir"
