# SPDX-License-Identifier: GPL-2.0
#
# libFuzzer targets for every parser of peer input:
#   fuzz_rx_stream, fuzz_codec_roundtrip   the codec shared by nbdws.ko and
#       userspace (common/ws_frame.c, common/nbd_wire.c), with the AVX2
#       masking userspace uses (lib/ws_mask_vec.c), and again as
#       *_scalar with the word loops the module runs (fuzz/ws_mask_scalar.c)
#   fuzz_http_request     lib/http_req.c and the upgrade check (ws_accept.c)
#   fuzz_http_response    the client's upgrade response parser (ws_upgrade.c)
#   fuzz_uri              lib/nbd_uri.c, with a round trip
#   fuzz_nbd_handshake    the NBD client handshake against a hostile server
#   fuzz_ws_stream        lib/ws_stream.c in both roles
# Run from the top level:
#
#   make fuzz                      build, seed, run each target 60 s
#   make fuzz FUZZ_SECONDS=300     longer
#   make fuzz FUZZ_RUNS=10000000   a number of executions per target instead
#   make fuzz FUZZ_TARGETS=fuzz_rx_stream
#   make -f fuzz/fuzz.mk build     build only
#
# Needs clang and libclang-rt-14-dev (libFuzzer, ASan, UBSan runtimes).
# Everything goes to build/fuzz/: binaries, the generated seed corpus
# (corpus/), the growing working corpus (work/), logs and any crash
# reproducer (crashes/). The run exits non-zero when a target crashes.

CLANG ?= clang
HOSTCC ?= cc
FUZZ_SECONDS ?= 60
CODEC_TARGETS := fuzz_rx_stream fuzz_codec_roundtrip
SCALAR_TARGETS := $(addsuffix _scalar,$(CODEC_TARGETS))
LIB_TARGETS := fuzz_http_request fuzz_http_response fuzz_uri \
	fuzz_nbd_handshake fuzz_ws_stream
ALL_TARGETS := $(CODEC_TARGETS) $(SCALAR_TARGETS) $(LIB_TARGETS)
FUZZ_TARGETS ?= $(ALL_TARGETS)

FB := build/fuzz
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror \
	-Iuapi -Icommon -Ilib -Ifuzz \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
CODEC_SRCS := common/ws_frame.c common/nbd_wire.c lib/ws_mask_vec.c
CODEC_HDRS := $(wildcard common/*.h lib/user_types.h lib/ws_mask_vec.h fuzz/*.h)
SCALAR_SRCS := common/ws_frame.c common/nbd_wire.c fuzz/ws_mask_scalar.c
# The userspace library's parsers, built into each of their targets with
# the sanitizers and coverage (linking lib's archive would leave them
# uninstrumented); OpenSSL only for the SHA-1 of the accept value.
LIB_SRCS := lib/http_req.c lib/ws_accept.c lib/ws_upgrade.c lib/nbd_uri.c \
	lib/nbd_handshake.c lib/ws_stream.c lib/nbdws_err.c \
	lib/secret.c $(wildcard lib/peer_text.c) $(CODEC_SRCS)
LIB_HDRS := $(CODEC_HDRS) $(wildcard lib/*.h)
LIB_LDLIBS := -lcrypto

.PHONY: all build corpus run check-clang
.DELETE_ON_ERROR:

all: run

check-clang:
	@command -v $(CLANG) >/dev/null || { echo "fuzz: $(CLANG) not found: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }

build: check-clang $(addprefix $(FB)/,$(FUZZ_TARGETS)) $(FB)/gen_corpus \
	$(FB)/gen_seeds

# The codec targets run every input several times over, cut byte by byte:
# comparison tracing there costs 3x in speed (measured: 1,400 against
# 4,600 executions/s for fuzz_rx_stream) for no coverage (their seeds
# already hold every magic and length form), so it is left out of them.
CODEC_CFLAGS := $(FUZZ_CFLAGS) -fno-sanitize-coverage=trace-cmp

$(addprefix $(FB)/,$(CODEC_TARGETS)): $(FB)/%: fuzz/%.c $(CODEC_SRCS) \
		$(CODEC_HDRS)
	@mkdir -p $(FB)
	$(CLANG) $(CODEC_CFLAGS) -o $@ $< $(CODEC_SRCS)

$(addprefix $(FB)/,$(SCALAR_TARGETS)): $(FB)/%_scalar: fuzz/%.c \
		$(SCALAR_SRCS) $(CODEC_HDRS)
	@mkdir -p $(FB)
	$(CLANG) $(CODEC_CFLAGS) -o $@ $< $(SCALAR_SRCS)

$(addprefix $(FB)/,$(LIB_TARGETS)): $(FB)/%: fuzz/%.c $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(FB)
	$(CLANG) $(FUZZ_CFLAGS) -D_GNU_SOURCE -o $@ $< $(LIB_SRCS) $(LIB_LDLIBS)

$(FB)/gen_corpus $(FB)/gen_seeds: $(FB)/%: fuzz/%.c $(CODEC_SRCS) \
		$(CODEC_HDRS)
	@mkdir -p $(FB)
	$(HOSTCC) -std=gnu11 -O2 -Wall -Wextra -Werror -Iuapi -Icommon -Ilib \
		-Ifuzz -o $@ $< $(CODEC_SRCS)

# Seeds: generated streams and requests, plus fuzz/regress/TARGET/,
# inputs that once crashed a target (each file says in its name what it
# caught). The scalar builds start from their vector twin's seeds.
$(FB)/corpus/.stamp: $(FB)/gen_corpus $(FB)/gen_seeds \
		$(wildcard fuzz/regress/*/*)
	rm -rf $(FB)/corpus
	mkdir -p $(addprefix $(FB)/corpus/,$(ALL_TARGETS))
	$(FB)/gen_corpus $(FB)/corpus/fuzz_rx_stream \
		$(FB)/corpus/fuzz_codec_roundtrip
	$(FB)/gen_seeds $(FB)/corpus
	for d in fuzz/regress/*/; do \
		t=$$(basename "$$d"); \
		mkdir -p $(FB)/corpus/"$$t" && \
		cp "$$d"* $(FB)/corpus/"$$t"/ || exit 1; \
	done
	for t in $(CODEC_TARGETS); do \
		cp $(FB)/corpus/$$t/* $(FB)/corpus/$${t}_scalar/ || exit 1; \
	done
	touch $@

corpus: $(FB)/corpus/.stamp

FUZZ_BOUND := $(if $(FUZZ_RUNS),--runs $(FUZZ_RUNS),$(FUZZ_SECONDS))

run: build corpus
	@fuzz/run-fuzz.sh $(FB) $(FUZZ_BOUND) $(FUZZ_TARGETS)
