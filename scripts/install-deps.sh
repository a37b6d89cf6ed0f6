#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything nbdws needs to build and test from Debian's registry.
# Idempotent: when the packages recorded by the previous run are all still
# installed it returns in well under a second without touching apt.
#
# Writes build/kernels.list: one "NAME KVER [ROOT]" line per target kernel
# of selftests/vm/kernels.conf, which the build and the VM harness read.
# ROOT only for a kernel of kind "unpack" (scripts/unpack-kernel.sh): the
# root its files and its kbuild live in; the others are installed here.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
conf="$top/selftests/vm/kernels.conf"
out="$top/build"
list="$out/kernels.list"
stamp="$out/deps.stamp"

# Build, check and test tools. Kernel packages are added per kernel below.
base_pkgs=(
	build-essential bc bison flex libelf-dev libssl-dev dwarves kmod cpio
	xz-utils pkg-config sparse dkms linux-source-6.1
	qemu-system-x86 busybox-static
	libnl-3-dev libnl-genl-3-dev libmnl-dev libkmod-dev
	libjson-c-dev nbdkit nbd-server nbd-client qemu-utils libnbd-bin fio e2fsprogs
	iproute2 procps openssl websockify python3-websockets clang clang-tidy libclang-rt-14-dev
	linux-perf debootstrap
	chromium firefox-esr fonts-dejavu-core
)

mkdir -p "$out"
# make check, make demo and the VM harness may all start this at once,
# in several checkouts: one at a time machine-wide (apt takes its locks
# without waiting; npm would trip over itself in one tree).
exec 9> /run/lock/nbdws-install-deps.lock
flock 9

# The browser tests and make demo drive Debian's chromium with
# playwright-core, and the browser tests Debian's firefox-esr with
# puppeteer-core (WebDriver BiDi), both from npm
# (tests/browser/package-lock.json), installed into build/npm so the tree
# stays clean. Neither downloads a browser of its own (--ignore-scripts).
npm_dir="$out/npm"
npm_deps() {
	local src="$top/tests/browser"
	[ -f "$src/package-lock.json" ] || return 0
	if [ -f "$npm_dir/node_modules/.package-lock.json" ] &&
	   cmp -s "$src/package-lock.json" "$npm_dir/package-lock.json" &&
	   cmp -s "$src/package.json" "$npm_dir/package.json"; then
		return 0
	fi
	command -v npm > /dev/null || {
		echo "install-deps: npm is missing (Node.js 20 or newer with npm)" >&2
		return 1; }
	mkdir -p "$npm_dir"
	cp "$src/package.json" "$src/package-lock.json" "$npm_dir/"
	(cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
}

if [ -s "$stamp" ] && [ -s "$list" ] && [ "$stamp" -nt "$conf" ] &&
   [ "$stamp" -nt "$0" ]; then
	mapfile -t want < "$stamp"
	if dpkg-query -W -f='${db:Status-Abbrev}\n' "${want[@]}" 2>/dev/null |
	   awk '$1 != "ii" { bad = 1 } END { exit bad }' &&
	   [ "$(dpkg-query -W "${want[@]}" 2>/dev/null | wc -l)" -eq "${#want[@]}" ] &&
	   awk 'NF >= 3 { print $3 "/.nbdws-ready" }' "$list" |
	   xargs -r ls > /dev/null 2>&1; then
		npm_deps
		exit 0
	fi
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root to install packages" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Backports (and any later suite) in a sources file of their own, pinned
# low so nothing on this machine is upgraded from it by accident: only
# packages asked for by exact name come from there.
add_suite() {
	local suite=$1 name=nbdws-$1
	[ -f "/etc/apt/sources.list.d/$name.sources" ] && return 0
	cat > "/etc/apt/sources.list.d/$name.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	cat > "/etc/apt/preferences.d/$name" <<PIN
Package: *
Pin: release n=$suite
Pin-Priority: 100
PIN
}

while read -r name suite _; do
	case "$name" in ''|'#'*) continue ;; esac
	[ "$suite" = default ] || add_suite "$suite"
done < "$conf"

apt-get update -qq

# Map a meta package of a suite to the versioned package of the same kind
# it depends on (linux-image-amd64 -> linux-image-KVER; newer suites list
# linux-base-amd64 first).
resolve() {
	local meta=$1 suite=$2 ver
	if [ "$suite" = default ]; then
		ver=$(apt-cache policy "$meta" | awk '/Candidate:/ { print $2 }')
	else
		ver=$(apt-cache madison "$meta" |
		      awk -F' *[|] *' -v s="$suite/" 'index($3, " " s) { print $2; exit }')
	fi
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || {
		echo "install-deps: no $meta in suite $suite" >&2; return 1; }
	apt-cache show "$meta=$ver" | sed -n 's/^Depends: //p' | head -n 1 |
		tr ',' '\n' | awk -v p="${meta%-amd64}-" '
			index($1, p) == 1 { print $1; exit }'
}

kernel_pkgs=() lines=()
while read -r name suite kind check _; do
	case "$name" in ''|'#'*) continue ;; esac
	# CHECK is scripts/check.sh's business; refuse a typo here, early.
	case "${check:-full}" in full|quick) ;; *)
		echo "install-deps: $name: unknown check '$check' (full, quick)" >&2
		exit 1 ;;
	esac
	hdr=$(resolve linux-headers-amd64 "$suite")
	img=$(resolve linux-image-amd64 "$suite")
	kver=${hdr#linux-headers-}
	[ -n "$hdr" ] && [ "$img" = "linux-image-$kver" ] || {
		echo "install-deps: $name: image '$img' does not match '$hdr'" >&2
		exit 1; }
	case "${kind:-install}" in
	install)
		kernel_pkgs+=("$hdr" "$img")
		lines+=("$name $kver") ;;
	unpack)
		# Its own root, prepared below once the host's packages
		# (debootstrap among them) are in.
		lines+=("$name $kver unpack $suite") ;;
	*)
		echo "install-deps: $name: unknown kind '$kind' (install, unpack)" >&2
		exit 1 ;;
	esac
done < "$conf"

# No recommends: firmware and the like are of no use to a test VM. The
# image's initramfs hook is harmless; the harness builds its own initramfs.
apt-get install -y -qq --no-install-recommends \
	"${base_pkgs[@]}" "${kernel_pkgs[@]}" >/dev/null

# Node.js and npm come with the machine (Node.js 20 or newer); Debian's
# only where there are none.
command -v npm > /dev/null ||
	apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
npm_deps

tmplist=$(mktemp "$list.XXXXXX")
for l in "${lines[@]}"; do
	read -r name kver kind suite <<< "$l"
	if [ "$kind" = unpack ]; then
		root=$("$top/scripts/unpack-kernel.sh" "$suite" "$kver")
		echo "$name $kver $root"
	else
		echo "$name $kver"
	fi
done > "$tmplist"

chmod 644 "$tmplist"
mv "$tmplist" "$list"
printf '%s\n' "${base_pkgs[@]}" "${kernel_pkgs[@]}" > "$stamp"
echo "install-deps: ready:" $(awk '{ print $2 }' "$list")
