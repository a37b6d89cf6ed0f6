#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# clang-tidy (config: .clang-tidy) over every userspace C file: common/
# as userspace builds it, lib/, tools/, bench/. Exits non-zero on any finding.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
files=$(ls common/*.c lib/*.c tools/*/*.c bench/*.c 2>/dev/null)
[ -n "$files" ] || exit 0
# shellcheck disable=SC2046
flags="-std=gnu11 -D_GNU_SOURCE -Iuapi -Icommon -Ilib -Itools/nbdws-relay $(pkg-config --cflags libnl-genl-3.0 libmnl libkmod json-c)"
echo "$files" | xargs -P "$(nproc)" -I{} sh -c \
	"clang-tidy --quiet {} -- $flags 2>&1 | grep -v '^[0-9]* warnings\\? generated' ; exit \$((\$? == 0 ? 0 : 0))" \
	> build/tidy.log
cat build/tidy.log
! grep -q 'error:' build/tidy.log
