#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a test VM for one target kernel: the host's root read-only over 9p,
# this tree writable at its own path, nbdws.ko built for that kernel.
#
#   vm.sh [--kernel NAME|KVER|debug] [--cmd CMD] [--job FILE] [--no-module]
#         [--timeout SEC] [--mem MiB] [--out DIR] [--forward PORT]...
#
# --kernel debug: the debug kernel of `make check-debug` (KASAN, lockdep,
#            kmemleak...; scripts/debug-kernel.sh builds it on first use).
# Without --cmd/--job: an interactive shell with the module loaded.
# --cmd CMD: run CMD (bash) with the module loaded, print its output, exit
#            with its status.
# --job FILE: run FILE (bash, path inside the tree) as it is; the job loads
#            whatever it needs (the selftest runner does).
# --forward PORT: the guest gets a network interface (virtio-net, qemu user
#            networking, eth0 10.0.2.15/24) and the host's 127.0.0.1:PORT
#            is forwarded to the guest's PORT, so a program on the host (a
#            browser) reaches a server in the guest. Repeatable. Only the
#            host's loopback address is bound.
# NBDWS_VM_APPEND adds to the guest kernel's command line.
# The console log of every run is kept in OUT/console.log (default
# build/vm/KVER, and build/vm/KVER/runs/cmd.* for each --cmd run).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kernel= cmd= job= timeout=900 mem=2048 mem_set= out= load=1 fwd=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--cmd) cmd=$2; shift 2 ;;
	--job) job=$2; shift 2 ;;
	--no-module) load=; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--mem) mem=$2; mem_set=1; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--forward)
		case "$2" in
		''|*[!0-9]*) echo "vm.sh: --forward takes a port number" >&2; exit 2 ;;
		esac
		[ "$2" -ge 1 ] && [ "$2" -le 65535 ] ||
			{ echo "vm.sh: --forward $2: not a port" >&2; exit 2; }
		fwd+=("$2"); shift 2 ;;
	*) echo "usage: vm.sh [--kernel NAME|KVER|debug] [--cmd CMD] [--job FILE] [--no-module] [--timeout SEC] [--mem MiB] [--out DIR] [--forward PORT]..." >&2
	   exit 2 ;;
	esac
done

"$top/scripts/install-deps.sh"
list="$top/build/kernels.list"
# Where the kernel, its modules and its module build tree are: Debian's
# packages on the host, an unpacked kernel's root, or the debug kernel in
# its cache.
moddir=/lib/modules kdir= extra_append= kbuild_args=() root=
if [ "$kernel" = debug ]; then
	# The debug kernel (scripts/debug-kernel.sh: built once, cached).
	# Its modules are not under the host's /lib/modules: the guest's init
	# mounts MODDIR over /lib/modules so modprobe finds them.
	read -r kver ddir < <("$top/scripts/debug-kernel.sh") || true
	[ -n "${kver:-}" ] || { echo "vm.sh: no debug kernel" >&2; exit 1; }
	vmlinuz=$ddir/bzImage
	moddir=$ddir/lib/modules
	kdir=$ddir/src
	# ACPI stays on: with acpi=off the kernel takes its CPUs from
	# SeaBIOS's MP table, which lists the boot CPU only, so the guest ran
	# on one CPU of -smp 2 and no SMP race could reach lockdep or KASAN.
	# With ACPI this kernel sees both CPUs and reaches userspace in ~27 s
	# under TCG on a loaded host (the ~100 s of ACPI loop timeouts once
	# measured here are gone).
	# kasan_multi_shot: every KASAN report, not only the first.
	extra_append=" kasan_multi_shot NBDWS_MODDIR=$moddir"
	[ "$mem_set" ] || mem=3072
	# The kernel has no debug info; nbdws.ko gets its own, so that
	# scripts/faddr2line turns a report's nbdws frames into lines.
	kbuild_args=(KCFLAGS=-g)
else
	# NAME or KVER; the first line of the list is the default kernel.
	read -r kver root < <(awk -v k="$kernel" '
		k == "" || $1 == k || $2 == k { print $2, $3; exit }' "$list") || true
	[ -n "${kver:-}" ] || { echo "vm.sh: unknown kernel '$kernel' (see $list; or 'debug')" >&2; exit 2; }
	vmlinuz=$root/boot/vmlinuz-$kver
	if [ -n "$root" ]; then
		# An unpacked kernel (scripts/unpack-kernel.sh): its modules
		# take the place of /lib/modules in the guest, as the debug
		# kernel's do; its kbuild runs in its root.
		moddir=$root/usr/lib/modules
		extra_append=" NBDWS_MODDIR=$moddir"
		kdir=/lib/modules/$kver/build
		kbuild_args=(--root "$root")
	fi
fi
kdir=${kdir:-$moddir/$kver/build}
[ -r "$vmlinuz" ] || { echo "vm.sh: $vmlinuz missing" >&2; exit 1; }
if [ -z "$out" ]; then
	out=$top/build/vm/$kver
	# Each one-command run gets a directory of its own, so several may
	# run side by side; its console log stays there.
	if [ -n "$cmd" ]; then
		mkdir -p "$out/runs"
		out=$(mktemp -d "$out/runs/cmd.XXXXXX")
	fi
fi
mkdir -p "$out"

# ---- initramfs: busybox + the modules that reach 9p ----------------------
initrd="$top/build/vm/initramfs-$kver.cpio.gz"
if [ ! -s "$initrd" ] || [ "$initrd" -ot "$top/selftests/vm/init" ] ||
   [ "$initrd" -ot "$0" ]; then
	mkdir -p "$top/build/vm"
	stage=$(mktemp -d "$top/build/vm/.initramfs.XXXXXX")
	trap 'rm -rf "$stage"' EXIT
	mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
	cp /bin/busybox "$stage/bin/busybox"
	cp "$top/selftests/vm/init" "$stage/init"
	: > "$stage/modules.order"
	: > "$stage/modules.net"
	# modules.order: always loaded; modules.net (virtio_net and what it
	# needs beyond that): loaded only when the guest has a network.
	{
		for m in virtio_pci 9pnet_virtio 9p; do
			modprobe -d "${moddir%/lib/modules}/" -S "$kver" --show-depends "$m" | sed 's/$/ order/'
		done
		modprobe -d "${moddir%/lib/modules}/" -S "$kver" --show-depends virtio_net | sed 's/$/ net/'
	} | awk '$1 == "insmod" && !seen[$2]++ { print $2, $NF }' |
	while read -r ko list; do
		base=$(basename "$ko"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
		case "$ko" in
		*.xz) xz -dc "$ko" > "$stage/lib/modules/$base" ;;
		*.zst) zstd -qdc "$ko" > "$stage/lib/modules/$base" ;;
		*.gz) gzip -dc "$ko" > "$stage/lib/modules/$base" ;;
		*) cp "$ko" "$stage/lib/modules/$base" ;;
		esac
		echo "$base" >> "$stage/modules.$list"
	done
	(cd "$stage" && find . | cpio -o -H newc --quiet) | gzip -1 > "$initrd.new"
	mv "$initrd.new" "$initrd"
	rm -rf "$stage"
	trap - EXIT
fi

# ---- module ---------------------------------------------------------------
ko=
if [ -n "$load" ]; then
	"$top/scripts/build-module.sh" --kdir "$kdir" \
		--log "$top/build/kernels/$kver/build.log" ${kbuild_args[@]+"${kbuild_args[@]}"}
	ko="$top/build/kernels/$kver/src/nbdws.ko"
fi

# ---- the job the guest runs -----------------------------------------------
mode=job
jobfile="$out/job.sh"
if [ -n "$job" ]; then
	jobfile=$job
elif [ -n "$cmd" ]; then
	{
		echo "export NBDWS_TOP='$top' NBDWS_KVER='$kver' NBDWS_KO='$ko'"
		echo "export NBDCTL='$top/build/nbdctl' TMPDIR=/tmp"
		echo "ip link set lo up"
		[ -n "$ko" ] && echo "insmod '$ko' || exit 125"
		echo "( $cmd ) 2>&1 | tee '$out/cmd.out'"
		echo "echo \${PIPESTATUS[0]} > '$out/cmd.rc'"
		echo "dmesg > '$out/dmesg.txt'"
	} > "$jobfile"
	rm -f "$out/cmd.rc" "$out/cmd.out"
else
	mode=shell
	{
		echo "export NBDWS_TOP='$top' NBDWS_KVER='$kver' NBDWS_KO='$ko'"
		echo "export NBDCTL='$top/build/nbdctl'"
		echo "ip link set lo up"
		[ -n "$ko" ] && echo "insmod '$ko'"
	} > "$out/profile.sh"
fi

# ---- accelerator: KVM only when a probe boot proves it works -------------
accel_file="$top/build/vm/accel"
if [ ! -f "$accel_file" ]; then
	accel=tcg
	if [ -w /dev/kvm ]; then
		probe="$top/build/vm/.kvm-probe"
		echo 'exit 0' > "$probe.sh"
		if timeout 20 qemu-system-x86_64 -enable-kvm -cpu host -m 256 \
			-nographic -no-reboot -kernel "$vmlinuz" -initrd "$initrd" \
			-append "console=ttyS0 panic=-1 NBDWS_TOP=$top NBDWS_JOB=$probe.sh NBDWS_MODE=job" \
			-virtfs local,path=/,mount_tag=root9p,security_model=none,readonly=on,multidevs=remap \
			-virtfs local,path="$top",mount_tag=nbdws9p,security_model=none,multidevs=remap \
			</dev/null 2>&1 | grep -q "job exited with status 0"; then
			accel=kvm
		fi
		rm -f "$probe.sh"
	fi
	echo "$accel" > "$accel_file"
fi
if [ "$(cat "$accel_file")" = kvm ]; then
	accel_args=(-enable-kvm -cpu host)
else
	accel_args=(-accel tcg,thread=multi -cpu max)
fi

# no_timer_check: the kernel's boot-time check that the IO-APIC delivers
# timer interrupts gives up, and panics, when a starved TCG vCPU does not
# see the interrupt within its short window (seen on a host 93% busy with
# other VMs); the emulated IO-APIC works, so the check only costs boots.
append="console=ttyS0 loglevel=5 panic=-1 no_timer_check NBDWS_TOP=$top NBDWS_MODE=$mode$extra_append"
[ ${#fwd[@]} -gt 0 ] && append+=" NBDWS_NET=1"
# NBDWS_VM_APPEND: more of the guest kernel's command line, for a probe
# (e.g. slub_debug=U to see who holds a slab cache's objects).
[ -n "${NBDWS_VM_APPEND:-}" ] && append+=" $NBDWS_VM_APPEND"
if [ "$mode" = shell ]; then
	# The guest's interactive bash takes the profile as its rcfile.
	append+=" NBDWS_JOB=$out/profile.sh"
else
	append+=" NBDWS_JOB=$jobfile"
fi

qemu=(qemu-system-x86_64 "${accel_args[@]}" -smp 2 -m "$mem"
	-nographic -no-reboot
	-kernel "$vmlinuz" -initrd "$initrd" -append "$append"
	-virtfs local,path=/,mount_tag=root9p,security_model=none,readonly=on,multidevs=remap
	-virtfs local,path="$top",mount_tag=nbdws9p,security_model=none,multidevs=remap)
if [ ${#fwd[@]} -gt 0 ]; then
	# User-mode networking: no access to anything but what is forwarded
	# in (restrict=on: the guest cannot connect out), bound to loopback.
	netdev=user,id=n0,restrict=on
	for p in "${fwd[@]}"; do
		netdev+=",hostfwd=tcp:127.0.0.1:$p-:$p"
	done
	qemu+=(-netdev "$netdev" -device virtio-net-pci,netdev=n0)
else
	qemu+=(-nic none)
fi

if [ "$mode" = shell ]; then
	exec "${qemu[@]}"
fi

rc=0
timeout --foreground -k 10 "$timeout" "${qemu[@]}" </dev/null \
	> "$out/console.log" 2>&1 || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "vm.sh: $kver: VM did not finish within ${timeout}s (console: $out/console.log)" >&2
	tail -n 50 "$out/console.log" >&2
	exit 124
fi
if [ -n "$cmd" ]; then
	cat "$out/cmd.out" 2>/dev/null || true
	[ -f "$out/cmd.rc" ] || {
		echo "vm.sh: the command did not complete (console: $out/console.log)" >&2
		tail -n 50 "$out/console.log" >&2
		exit 1; }
	exit "$(cat "$out/cmd.rc")"
fi
