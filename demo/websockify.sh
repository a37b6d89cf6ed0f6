#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo-websockify, inside the VM (scripts/vm.sh --cmd): a disk
# image with a file system is served by an NBD server behind a WebSocket,
# first ws:// then wss:// (TLS), and this machine gets a block device
# backed by it (nbdws.ko in the ws-client role; make demo shows the
# other direction, a browser serving to the relay):
#
#   nbdkit (file plugin, the image) <- unix socket <- websockify (ws://,
#   wss://) <- TCP <- nbdws.ko in the ws-client role (kTLS for wss://)
#
# nbdctl does the HTTP upgrade, the TLS handshake and the NBD handshake,
# then hands the socket to the kernel, which frames and unframes NBD
# traffic itself. The file system is mounted, a file on it is read back
# and checked, a new file is written, and after disconnecting the image
# itself is checked for the new file. Exits non-zero on any failure.
set -eu
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

top=$(cd "$(dirname "$0")/.." && pwd)
nbdctl=${NBDCTL:-$top/build/nbdctl}
tmp=$(mktemp -d /tmp/nbdws-demo.XXXXXX)
pids=()

cleanup() {
	exec 2> /dev/null
	umount "$tmp/mnt" 2>/dev/null || true
	"$nbdctl" disconnect --all > /dev/null 2>&1 || true
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
	for _ in $(seq 300); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "nothing listens on port $1" >&2
	return 1
}
spawn() {	# spawn LOG CMD...: a daemon in its own process group
	local log=$1
	shift
	setsid "$@" > "$log" 2>&1 &
	pids+=($!)
}

modprobe tls
modprobe ext4
mkdir -p "$tmp/mnt" "$tmp/content"

step "a 64 MiB disk image with an ext4 file system and a 16 MiB file on it"
head -c 16M /dev/urandom > "$tmp/content/photo.raw"
(cd "$tmp/content" && sha256sum photo.raw) > "$tmp/photo.sha256"
mkfs.ext4 -q -F -L nbdws-demo -d "$tmp/content" "$tmp/disk.img" 64M
ls -l "$tmp/disk.img"

step "nbdkit serves it on a unix socket; websockify puts it behind ws://"
spawn "$tmp/nbdkit.log" nbdkit -f -U "$tmp/nbd.sock" file "$tmp/disk.img"
for _ in $(seq 100); do [ -S "$tmp/nbd.sock" ] && break; sleep 0.1; done
wsport=$(free_port)
spawn "$tmp/ws.log" websockify --unix-target="$tmp/nbd.sock" \
	"127.0.0.1:$wsport"
wait_port "$wsport"

step "nbdctl info ws://127.0.0.1:$wsport/"
"$nbdctl" info "ws://127.0.0.1:$wsport/"

step "nbdctl connect --ping 5 ws://127.0.0.1:$wsport/"
dev=$("$nbdctl" connect --ping 5 "ws://127.0.0.1:$wsport/")
dev=${dev#/dev/}
echo "/dev/$dev"
for _ in $(seq 100); do [ -b "/dev/$dev" ] && break; sleep 0.1; done
"$nbdctl" status "$dev"

step "mount /dev/$dev, check the file, write another one"
mount "/dev/$dev" "$tmp/mnt"
df -h "$tmp/mnt" | tail -n 1
(cd "$tmp/mnt" && sha256sum -c "$tmp/photo.sha256")
head -c 4M /dev/urandom > "$tmp/mnt/written-over-websocket.raw"
(cd "$tmp/mnt" && sha256sum written-over-websocket.raw) > "$tmp/new.sha256"
umount "$tmp/mnt"
"$nbdctl" status "$dev"
"$nbdctl" disconnect "$dev"

step "the same image over wss:// (TLS; kTLS in the kernel)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2> /dev/null
tlsport=$(free_port)
spawn "$tmp/wss.log" websockify --ssl-only --cert="$tmp/cert.pem" \
	--key="$tmp/key.pem" --unix-target="$tmp/nbd.sock" \
	"127.0.0.1:$tlsport"
wait_port "$tlsport"
dev=$("$nbdctl" connect -r --cafile "$tmp/cert.pem" "wss://127.0.0.1:$tlsport/")
dev=${dev#/dev/}
echo "/dev/$dev (read-only)"
for _ in $(seq 100); do [ -b "/dev/$dev" ] && break; sleep 0.1; done
mount -o ro "/dev/$dev" "$tmp/mnt"
(cd "$tmp/mnt" && sha256sum -c "$tmp/photo.sha256" "$tmp/new.sha256")
umount "$tmp/mnt"
"$nbdctl" disconnect "$dev"

step "the image file itself has what was written through the kernel"
# Read by debugfs straight from the file: no kernel driver in between.
mkdir "$tmp/out"
debugfs -R "dump /written-over-websocket.raw $tmp/out/written-over-websocket.raw" \
	"$tmp/disk.img" 2> /dev/null
(cd "$tmp/out" && sha256sum -c "$tmp/new.sha256")

if dmesg | grep -E 'Oops|BUG:|WARNING:|hung_task' > "$tmp/bad"; then
	cat "$tmp/bad"
	echo "demo: the kernel log has errors" >&2
	exit 1
fi
step "demo passed"
