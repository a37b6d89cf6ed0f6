# SPDX-License-Identifier: GPL-2.0
#
# nbdws: top-level build. The module itself is described by Kbuild; this
# file drives it (compile probes first) and builds everything in userspace.
#
#   make                  module for KDIR + tools
#   make module           nbdws.ko for KDIR (KDIR=... to choose headers)
#   make tools            nbdctl
#   make demo             install deps, build, a browser serves an image to
#                         nbdws-relay and nbdws.ko in a test VM, end to end
#   make check            install deps, unit tests, lint, DKMS, VM selftests
#                         (CHECK_ARGS='--kernel 7.2': its whole suite, see
#                         selftests/vm/kernels.conf)
#   make check-debug      the VM selftests on a debug kernel (KASAN, lockdep,
#                         kmemleak, UBSAN; built once, ~20 min, cached)
#   make vm               shell in a test VM with the module loaded
#   make install          module + tools under DESTDIR/PREFIX
#   make lint             checkpatch --strict, sparse, W=1 for every kernel
#   make tidy             clang-tidy over the userspace sources
#   make fuzz             libFuzzer targets (clang)
#   make unit-clang       host unit tests built by clang (build/clang/unit)
#   make dkms-source      module sources + dkms.conf to DESTDIR/usr/src
#
# Userspace sources are found, not listed: every lib/*.c and common/*.c is
# part of the userspace libraries, tools/nbdctl/*.c make nbdctl,
# tests/unit/test_*.c are host unit tests and selftests/nbdws/*.c are VM
# selftests.

VERSION := $(shell cat VERSION)
B := build

# Kernel headers: the running kernel's, else the newest Debian headers.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1))

PREFIX ?= /usr/local
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
USER_PKGS := libnl-3.0 libnl-genl-3.0 libmnl libkmod json-c
USER_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
	-Iuapi -Icommon -Ilib \
	$(shell $(PKG_CONFIG) --cflags $(USER_PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
USER_LDLIBS = $(shell $(PKG_CONFIG) --libs $(USER_PKGS) 2>/dev/null) \
	-lssl -lcrypto
# Unit tests run with AddressSanitizer and UBSan on the host.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

COMMON_SRCS := $(wildcard common/*.c)
LIB_SRCS := $(wildcard lib/*.c)
NBDCTL_SRCS := $(wildcard tools/nbdctl/*.c)
RELAY_SRCS := $(wildcard tools/nbdws-relay/*.c)
SERVE_SRCS := $(wildcard tools/nbdws-serve/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
SELFTEST_SRCS := $(wildcard selftests/nbdws/*.c)
USER_HDRS := $(wildcard uapi/linux/*.h common/*.h lib/*.h tools/nbdctl/*.h \
	tools/nbdws-relay/*.h tools/nbdws-serve/*.h tests/unit/*.h selftests/nbdws/*.h)

# kselftest_harness.h and kselftest.h come from linux-source-6.1.
KSFT := $(B)/kselftest
KSFT_HDRS := $(KSFT)/kselftest_harness.h $(KSFT)/kselftest.h

LIBUSER := $(B)/libnbdws-user.a
LIBUSER_SAN := $(B)/san/libnbdws-user.a
NBDCTL := $(B)/nbdctl
RELAY := $(B)/nbdws-relay
SERVE := $(B)/nbdws-serve
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRCS))
SELFTEST_BINS := $(patsubst selftests/nbdws/%.c,$(B)/selftests/%,$(SELFTEST_SRCS))

.PHONY: all module tools unit selftests check check-debug lint vm install clean deps \
	checkpatch tidy fuzz dkms-source help
.DELETE_ON_ERROR:

all: module tools

help:
	@sed -n '4,20p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@scripts/install-deps.sh

# ---- kernel module --------------------------------------------------------

module:
	@test -n "$(KDIR)" || { echo "no kernel headers: install linux-headers or pass KDIR=" >&2; exit 1; }
	@scripts/build-module.sh --kdir "$(KDIR)" --copy-to .

# ---- userspace ------------------------------------------------------------

tools: $(if $(NBDCTL_SRCS),$(NBDCTL)) $(if $(RELAY_SRCS),$(RELAY)) \
	$(if $(SERVE_SRCS),$(SERVE))

$(B)/obj/%.o: %.c $(USER_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -c -o $@ $<

$(B)/san/obj/%.o: %.c $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -c -o $@ $<

$(LIBUSER): $(patsubst %.c,$(B)/obj/%.o,$(COMMON_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBUSER_SAN): $(patsubst %.c,$(B)/san/obj/%.o,$(COMMON_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(NBDCTL): $(patsubst %.c,$(B)/obj/%.o,$(NBDCTL_SRCS)) $(LIBUSER)
	$(CC) -o $@ $^ $(USER_LDLIBS)

# The relay: one process, an epoll loop, fibers for handshakes and one
# worker thread for netlink commands (tools/nbdws-relay/relay.h).
$(RELAY): $(patsubst %.c,$(B)/obj/%.o,$(RELAY_SRCS)) $(LIBUSER)
	$(CC) -pthread -o $@ $^ $(USER_LDLIBS)

# --version prints the release; only the tools' objects need it.
$(B)/obj/tools/nbdws-relay/%.o $(B)/san/obj/tools/nbdws-relay/%.o \
$(B)/obj/tools/nbdctl/%.o: \
	USER_CFLAGS += -DNBDWS_VERSION=\"$(VERSION)\"
$(B)/obj/tools/nbdctl/main.o: VERSION

# The same with ASan/UBSan, for the host unit tests that drive the relay.
RELAY_SAN := $(B)/san/nbdws-relay
$(RELAY_SAN): $(patsubst %.c,$(B)/san/obj/%.o,$(RELAY_SRCS)) $(LIBUSER_SAN)
	$(CC) $(SAN_FLAGS) -pthread -o $@ $^ $(USER_LDLIBS)

# nbdws-serve: a file or an NBD server served to the relay, as a
# WebSocket client (tools/nbdws-serve/serve.h). Worker threads do the I/O.
$(SERVE): $(patsubst %.c,$(B)/obj/%.o,$(SERVE_SRCS)) $(LIBUSER)
	$(CC) -pthread -o $@ $^ $(USER_LDLIBS) -lm

$(B)/obj/tools/nbdws-serve/%.o $(B)/san/obj/tools/nbdws-serve/%.o: \
	USER_CFLAGS += -DNBDWS_VERSION=\"$(VERSION)\" -pthread

SERVE_SAN := $(B)/san/nbdws-serve
$(SERVE_SAN): $(patsubst %.c,$(B)/san/obj/%.o,$(SERVE_SRCS)) $(LIBUSER_SAN)
	$(CC) $(SAN_FLAGS) -pthread -o $@ $^ $(USER_LDLIBS) -lm

unit: $(UNIT_BINS) $(NBDCTL) $(if $(RELAY_SRCS),$(RELAY_SAN)) \
	$(if $(SERVE_SRCS),$(SERVE_SAN))

# The host unit tests (and what they run) again, built by clang with its
# ASan/UBSan under build/clang/: clang's UBSan sees undefined behaviour
# gcc's misses (pointer arithmetic on NULL, for one).
.PHONY: unit-clang
unit-clang: $(KSFT_HDRS)
	@$(MAKE) --no-print-directory B=$(B)/clang CC=clang \
		KSFT=$(CURDIR)/$(KSFT) unit

# kselftest_harness.h's TEST() leaves its 'variant' parameter unused and
# its EXPECT_*() are for loops whose body (an optional TH_LOG) may be
# empty: gcc keeps quiet about a system header's macros, clang does not.
$(B)/unit/%: private USER_CFLAGS += \
	$(if $(filter clang%,$(notdir $(CC))),-Wno-unused-parameter -Wno-empty-body)

# nbdws-serve's NBD server machine on its own: no sockets, no threads.
SERVE_PROTO_SRCS := $(addprefix tools/nbdws-serve/,nbdsrv.c wsc.c)
$(B)/unit/test_nbdws_serve_proto: tests/unit/test_nbdws_serve_proto.c \
		$(SERVE_PROTO_SRCS) $(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -Itools/nbdws-serve -o $@ \
		$< $(SERVE_PROTO_SRCS) $(LIBUSER_SAN) $(USER_LDLIBS)

$(B)/unit/%: tests/unit/%.c $(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -o $@ $< $(LIBUSER_SAN) $(USER_LDLIBS)

# The relay's runtime (loop, fibers, hooks, listeners) on its own: no
# module needed.
RELAY_RUNTIME_SRCS := $(addprefix tools/nbdws-relay/,loop.c fiber.c hook.c listen.c log.c)
$(B)/unit/test_relay_runtime: tests/unit/test_relay_runtime.c $(RELAY_RUNTIME_SRCS) \
		$(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -Itools/nbdws-relay -o $@ \
		$< $(RELAY_RUNTIME_SRCS) $(LIBUSER_SAN) $(USER_LDLIBS)

# The relay's userspace framing on the relay's loop: no module needed.
RELAY_FALLBACK_SRCS := $(addprefix tools/nbdws-relay/,fallback.c loop.c)
$(B)/unit/test_fallback: tests/unit/test_fallback.c $(RELAY_FALLBACK_SRCS) \
		$(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -Itools/nbdws-relay -pthread \
		-o $@ $< $(RELAY_FALLBACK_SRCS) $(LIBUSER_SAN) $(USER_LDLIBS)

# What the relay decides on a request (tokens, credentials, routes, file
# paths): pure code, no loop or module needed.
RELAY_SESSION_SRCS := $(addprefix tools/nbdws-relay/,auth.c route.c webfiles.c log.c)
$(B)/unit/test_relay_session: tests/unit/test_relay_session.c $(RELAY_SESSION_SRCS) \
		$(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -Itools/nbdws-relay -o $@ \
		$< $(RELAY_SESSION_SRCS) $(LIBUSER_SAN) $(USER_LDLIBS)

# nbdctl connect's size derivation on its own (tools/nbdctl/params.c).
$(B)/unit/test_nbdctl_params: tests/unit/test_nbdctl_params.c tools/nbdctl/params.c \
		$(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -isystem $(KSFT) -Itools/nbdctl -o $@ \
		$< tools/nbdctl/params.c $(LIBUSER_SAN) $(USER_LDLIBS)

# Credentials are wiped before free(): every free() and realloc() of the
# test, lib/ and the tool code linked in is checked for a marker that the
# test's credentials carry (-Wl,--wrap; see the test's comment).
SECRET_WIPE_SRCS := $(addprefix tools/nbdws-relay/,auth.c log.c) \
	$(addprefix tools/nbdws-serve/,cli.c)
$(B)/unit/test_secret_wipe: tests/unit/test_secret_wipe.c $(SECRET_WIPE_SRCS) \
		$(LIBUSER_SAN) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -DNBDWS_VERSION=\"$(VERSION)\" -pthread \
		-isystem $(KSFT) -Itools/nbdws-relay -Itools/nbdws-serve -o $@ \
		$< $(SECRET_WIPE_SRCS) $(LIBUSER_SAN) $(USER_LDLIBS) \
		-Wl,--wrap=free -Wl,--wrap=realloc

selftests: $(SELFTEST_BINS) tools bench-tools

$(B)/selftests/%: selftests/nbdws/%.c $(LIBUSER) $(USER_HDRS) $(KSFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -isystem $(KSFT) -o $@ $< $(LIBUSER) $(USER_LDLIBS)

$(KSFT_HDRS) &:
	@scripts/kernel-tree-files.sh

# ---- checks ---------------------------------------------------------------

check:
	@scripts/install-deps.sh
	@scripts/check.sh $(CHECK_ARGS)

# Not part of make check: the first run builds the debug kernel.
check-debug:
	@scripts/install-deps.sh
	@scripts/check.sh --vm-only --kernel debug $(CHECK_ARGS)

lint:
	@scripts/lint.sh

checkpatch:
	@scripts/lint.sh --checkpatch-only

tidy:
	@mkdir -p $(B) && scripts/tidy.sh

vm: tools selftests
	@scripts/vm.sh $(if $(KERNEL),--kernel $(KERNEL)) $(if $(CMD),--cmd "$(CMD)")

fuzz:
	@$(MAKE) -f fuzz/fuzz.mk

# The main job: a browser page on this machine serves a disk image to the
# relay in a test VM, then nbdws-serve a writable one (demo/run.sh).
.PHONY: demo demo-websockify
demo:
	@demo/run.sh $(if $(KERNEL),--kernel $(KERNEL))

# The other direction: nbdws.ko dials an NBD server behind websockify
# (ws:// and wss:// with kTLS), all inside the VM.
demo-websockify:
	@scripts/install-deps.sh
	@$(MAKE) -s tools
	@scripts/vm.sh $(if $(KERNEL),--kernel $(KERNEL)) --timeout 900 --cmd "bash $(CURDIR)/demo/websockify.sh"

# nbdws vs nbd.ko in one VM (not a test): bench/README.md. The WebSocket
# rows also need the bench's own NBD peer and ws-server attach program.
# (ws_proxy, the nbd-proxy stand-in, is listed here: a rule's
# prerequisites are expanded where the rule is read, so an append below
# it would never be built by bench-tools.)
BENCH_BINS := $(B)/ws_nbd_peer $(B)/ws_attach $(B)/ws_proxy
.PHONY: bench bench-tools
bench-tools: $(BENCH_BINS)

$(B)/ws_nbd_peer $(B)/ws_attach: $(B)/%: bench/%.c $(LIBUSER) $(USER_HDRS)
	$(CC) $(USER_CFLAGS) -pthread -o $@ $< $(LIBUSER) $(USER_LDLIBS)

# The nbd-proxy stand-in pumps with the relay's own userspace framing.
$(B)/ws_proxy: bench/ws_proxy.c $(RELAY_FALLBACK_SRCS) $(LIBUSER) $(USER_HDRS)
	$(CC) $(USER_CFLAGS) -Itools/nbdws-relay -o $@ $< $(RELAY_FALLBACK_SRCS) \
		$(LIBUSER) $(USER_LDLIBS)

# ws_attach speaks netlink through the selftests' libmnl client.
$(B)/ws_attach: selftests/nbdws/nbdws_test_genl.h selftests/nbdws/nbdws_test_util.h

bench: tools bench-tools
	@bench/run.sh $(BENCH_ARGS)

# ---- install --------------------------------------------------------------

# What DKMS needs to build the module: sources, Kbuild, probes, this
# Makefile (its module target) and scripts/build-module.sh.
DKMS_FILES := Makefile Kbuild VERSION dkms.conf scripts/build-module.sh \
	$(wildcard kmod/*.[ch] kmod/probes/* common/*.[ch] uapi/linux/*.h)
DKMS_DIR := $(DESTDIR)/usr/src/nbdws-$(VERSION)

dkms-source:
	@grep -q '^PACKAGE_VERSION="$(VERSION)"$$' dkms.conf || \
		{ echo "dkms.conf PACKAGE_VERSION does not match VERSION ($(VERSION))" >&2; exit 1; }
	rm -rf $(DKMS_DIR)
	for f in $(DKMS_FILES); do install -D -m 0644 $$f $(DKMS_DIR)/$$f; done
	chmod 0755 $(DKMS_DIR)/scripts/build-module.sh

install: all
	$(if $(NBDCTL_SRCS),install -D -m 0755 $(NBDCTL) $(DESTDIR)$(PREFIX)/sbin/nbdctl)
	install -D -m 0644 uapi/linux/nbdws.h $(DESTDIR)$(PREFIX)/include/linux/nbdws.h
	$(if $(wildcard Documentation/nbdctl.8),install -D -m 0644 Documentation/nbdctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/nbdctl.8)
	$(if $(RELAY_SRCS),$(MAKE) -s install-relay)
	$(if $(SERVE_SRCS),$(MAKE) -s install-serve)
	install -D -m 0644 nbdws.ko \
		$(DESTDIR)/lib/modules/$(shell scripts/build-module.sh --kdir "$(KDIR)" --print-kver)/updates/nbdws.ko
	$(if $(DESTDIR),,depmod -a $(shell scripts/build-module.sh --kdir "$(KDIR)" --print-kver))

# The relay: binary, man page, systemd unit (ExecStart pointed at this
# PREFIX), the example configuration, and the browser page when web/ exists.
RELAY_DOC := $(DESTDIR)$(PREFIX)/share/doc/nbdws
RELAY_WEB := $(DESTDIR)$(PREFIX)/share/nbdws/web
.PHONY: install-relay
install-relay: $(RELAY)
	install -D -m 0755 $(RELAY) $(DESTDIR)$(PREFIX)/sbin/nbdws-relay
	install -D -m 0644 Documentation/nbdws-relay.8 $(DESTDIR)$(PREFIX)/share/man/man8/nbdws-relay.8
	install -d $(DESTDIR)/lib/systemd/system
	sed 's|^ExecStart=/usr/sbin/|ExecStart=$(PREFIX)/sbin/|' tools/nbdws-relay/nbdws-relay.service \
		>$(DESTDIR)/lib/systemd/system/nbdws-relay.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/nbdws-relay.service
	install -D -m 0644 tools/nbdws-relay/config.example.json $(RELAY_DOC)/nbdws-relay.config.example.json
	install -D -m 0644 Documentation/relay.md $(RELAY_DOC)/relay.md
	$(if $(wildcard web/*),rm -rf $(RELAY_WEB) && install -d $(RELAY_WEB) && \
		cp -R web/. $(RELAY_WEB)/ && chmod -R go-w $(RELAY_WEB) && chmod -R a+rX $(RELAY_WEB))

# nbdws-serve runs as any user on the machine that has the image.
.PHONY: install-serve
install-serve: $(SERVE)
	install -D -m 0755 $(SERVE) $(DESTDIR)$(PREFIX)/bin/nbdws-serve
	install -D -m 0644 Documentation/nbdws-serve.1 $(DESTDIR)$(PREFIX)/share/man/man1/nbdws-serve.1

clean:
	rm -rf $(B) nbdws.ko
