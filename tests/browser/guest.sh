#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest's side of make demo and the browser tests: what the host asks
# the test VM to do (through tests/browser/vm-agent.sh), one subcommand
# each, e.g.
#
#   bash tests/browser/guest.sh relay-start PORT WEBDIR TOKEN [HOLD]
#   bash tests/browser/guest.sh wait-state disk0 serving 60
#
# Sourced (demo/guest.sh does), it only defines the functions. The relay
# and its files live in /tmp/nbdws-relay, the guest's own tmpfs: tokens
# must be mode 600 and owned by root, which a 9p share does not promise.
# Every function prints what it saw and returns non-zero when it is not
# what was expected.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

top=${NBDWS_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
relay_bin=${NBDWS_RELAY:-$top/build/nbdws-relay}
rd=/tmp/nbdws-relay
py=/usr/bin/python3

# relay-start PORT WEBDIR TOKEN [HOLD [TOKEN1]]: slots disk0 (/dev/nbdws0,
# the default) and disk1 (/dev/nbdws1), TOKEN good for both (TOKEN1, if
# given, for disk1 only), a state hook
# that logs "start|stop SLOT DEVICE" to $rd/hook.log, the page from
# WEBDIR, listening on every address of the guest at PORT (the host's
# 127.0.0.1:PORT is forwarded there).
relay-start() {
	local port=$1 web=$2 token=$3 hold=${4:-60} token1=${5:-}
	mkdir -p "$rd"
	chmod 700 "$rd"
	printf '# browser tests\n%s\n' "$token" > "$rd/tokens"
	[ -n "$token1" ] && printf '%s disk1\n' "$token1" >> "$rd/tokens"
	chmod 600 "$rd/tokens"
	cat > "$rd/hook" <<EOF
#!/bin/sh
echo "\$1 \$2 \$NBDWS_DEVICE" >> "$rd/hook.log"
EOF
	chmod 755 "$rd/hook"
	: > "$rd/hook.log"
	cat > "$rd/relay.json" <<EOF
{
  "listen": ["0.0.0.0:$port"],
  "web": "$web",
  "state-hook": "$rd/hook",
  "auth": { "tokens-file": "$rd/tokens" },
  "defaults": { "hold": $hold },
  "slots": {
    "disk0": { "index": 0, "default": true,
               "metadata": { "description": "Disk 0" } },
    "disk1": { "index": 1,
               "metadata": { "description": "Disk 1" } }
  }
}
EOF
	setsid "$relay_bin" --config "$rd/relay.json" -v > "$rd/relay.log" 2>&1 < /dev/null &
	echo $! > "$rd/relay.pid"
	for _ in $(seq 300); do
		if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
			echo "nbdws-relay (pid $(cat "$rd/relay.pid")) listens on 0.0.0.0:$port"
			return 0
		fi
		kill -0 "$(cat "$rd/relay.pid")" 2> /dev/null || break
		sleep 0.2
	done
	echo "nbdws-relay did not start:"
	cat "$rd/relay.log"
	return 1
}

# relay-stop: SIGTERM; it must exit 0 within 30 s.
relay-stop() {
	local pid rc
	pid=$(cat "$rd/relay.pid" 2> /dev/null) || { echo "no relay"; return 1; }
	kill -TERM "$pid" 2> /dev/null || { echo "relay (pid $pid) not running"; return 1; }
	for _ in $(seq 300); do
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2> /dev/null; then
		echo "relay (pid $pid) still running 30 s after SIGTERM"
		kill -KILL "$pid"
		return 1
	fi
	rm -f "$rd/relay.pid"
	echo "nbdws-relay stopped"
}

relay-log() {
	cat "$rd/relay.log"
}

hook-log() {
	cat "$rd/hook.log"
}

hook-reset() {
	: > "$rd/hook.log"
}

# status TOKEN PORT [KEY...]: GET /status; with KEYs, print each value
# (slots[NAME].key.key, e.g. slots[disk0].kernel.conns.0.stats.reads)
# one per line, else the whole JSON.
status() {
	local token=$1 port=$2
	shift 2
	$py - "$token" "$port" "$@" <<'EOF'
import json, re, sys, urllib.request
tok, port, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
req = urllib.request.Request("http://127.0.0.1:%s/status" % port,
                             headers={"Authorization": "Bearer " + tok})
st = json.load(urllib.request.urlopen(req, timeout=10))
if not keys:
    print(json.dumps(st, indent=1))
for k in keys:
    v = st
    for part in k.split("."):
        m = re.fullmatch(r"(\w+)\[([^]]+)\]", part)
        if m:
            v = next(s for s in v[m.group(1)] if s["name"] == m.group(2))
        elif isinstance(v, list):
            v = v[int(part)]
        else:
            v = v[part]
    print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
EOF
}

# wait-state TOKEN PORT SLOT STATE SECONDS
wait-state() {
	local end=$((SECONDS + $5)) s=
	while [ $SECONDS -lt "$end" ]; do
		s=$(status "$1" "$2" "slots[$3].state" 2> /dev/null)
		[ "$s" = "$4" ] && { echo "slot $3: $s"; return 0; }
		sleep 0.2
	done
	echo "slot $3 is '$s' after $5 s, not '$4'"
	return 1
}

# wait-dev DEV SECONDS: the block device exists with a size.
wait-dev() {
	local end=$((SECONDS + $2)) b=/sys/block/${1#/dev/}
	while [ $SECONDS -lt "$end" ]; do
		if [ -b "$1" ] && [ "$(cat "$b/size" 2> /dev/null || echo 0)" -gt 0 ]; then
			echo "$1: $(blockdev --getsize64 "$1") bytes, read-only $(blockdev --getro "$1")"
			return 0
		fi
		sleep 0.1
	done
	echo "$1 did not appear within $2 s"
	return 1
}

# dev-gone DEV SECONDS
dev-gone() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt "$end" ]; do
		[ -e "/sys/block/${1#/dev/}" ] || { echo "$1 is gone"; return 0; }
		sleep 0.1
	done
	echo "$1 still exists after $2 s"
	return 1
}

# check-files DEV LIST SUMS [MNT]: mount DEV read-only, the files on it
# are exactly those of LIST (paths, sorted) with the SHA-256 of SUMS.
check-files() {
	local dev=$1 list=$2 sums=$3 mnt=${4:-/tmp/mnt-ro} rc=0
	mkdir -p "$mnt"
	mount -o ro "$dev" "$mnt" || return 1
	(cd "$mnt" && find . -path ./lost+found -prune -o -type f -print | sort) > /tmp/files.got
	if ! diff -u "$list" /tmp/files.got; then
		echo "the files on $dev are not those of the image"
		rc=1
	fi
	# What a person would look at; the checks are the two above and below.
	(cd "$mnt" && ls -lR --time-style=+ .) | grep -v '^total' | head -n 40
	(cd "$mnt" && sha256sum -c "$sums") || rc=1
	umount "$mnt" || rc=1
	return $rc
}

# dev-limits DEV: what the kernel offers on DEV besides reads and writes.
dev-limits() {
	local q=/sys/block/${1#/dev/}/queue f
	for f in discard_max_bytes write_zeroes_max_bytes write_cache fua; do
		echo "$f $(cat "$q/$f" 2> /dev/null || echo '?')"
	done
}

# write-fs DEV MIB DIR [MNT]: a new ext4 on the first MIB MiB of DEV
# (mkfs discards that part first), DIR's files copied in, unmounted.
write-fs() {
	local dev=$1 mib=$2 src=$3 mnt=${4:-/tmp/mnt-rw}
	mkfs.ext4 -q -F -L written "$dev" "${mib}M" || return 1
	mkdir -p "$mnt"
	mount "$dev" "$mnt" || return 1
	if ! cp -r "$src/." "$mnt/"; then
		umount "$mnt"
		return 1
	fi
	(cd "$mnt" && find . -path ./lost+found -prune -o -type f -print | sort)
	umount "$mnt"
}

# read-sum DEV BYTES: SHA-256 of the first BYTES of DEV (O_DIRECT).
read-sum() {
	dd if="$1" bs=64k iflag=direct,count_bytes count="$2" status=none |
		sha256sum | cut -d' ' -f1
}

no-devices() {
	local d left=
	for d in /sys/block/nbdws*; do
		[ -e "$d" ] && left="$left ${d##*/}"
	done
	[ -z "$left" ] && { echo "no nbdws device"; return 0; }
	echo "devices left:$left"
	return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ $# -gt 0 ] || { echo "usage: guest.sh SUBCOMMAND [ARGS...]" >&2; exit 2; }
	"$@"
fi
