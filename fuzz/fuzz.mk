# SPDX-License-Identifier: GPL-2.0
#
# libFuzzer targets for the codec shared by nbdws.ko and userspace
# (common/ws_frame.c, common/nbd_wire.c; lib/ws_mask_vec.c is the vector
# masking userspace builds of ws_frame.c use). Run from the top level:
#
#   make fuzz                      build, seed, run each target 60 s
#   make fuzz FUZZ_SECONDS=300     longer
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
FUZZ_TARGETS ?= fuzz_rx_stream fuzz_codec_roundtrip

FB := build/fuzz
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror \
	-Iuapi -Icommon -Ilib -Ifuzz \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
CODEC_SRCS := common/ws_frame.c common/nbd_wire.c lib/ws_mask_vec.c
CODEC_HDRS := $(wildcard common/*.h lib/user_types.h lib/ws_mask_vec.h fuzz/*.h)

.PHONY: all build corpus run check-clang
.DELETE_ON_ERROR:

all: run

check-clang:
	@command -v $(CLANG) >/dev/null || { echo "fuzz: $(CLANG) not found: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }

build: check-clang $(addprefix $(FB)/,$(FUZZ_TARGETS)) $(FB)/gen_corpus

$(FB)/fuzz_%: fuzz/fuzz_%.c $(CODEC_SRCS) $(CODEC_HDRS)
	@mkdir -p $(FB)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(CODEC_SRCS)

$(FB)/gen_corpus: fuzz/gen_corpus.c $(CODEC_SRCS) $(CODEC_HDRS)
	@mkdir -p $(FB)
	$(HOSTCC) -std=gnu11 -O2 -Wall -Wextra -Werror -Iuapi -Icommon -Ilib \
		-Ifuzz -o $@ $< $(CODEC_SRCS)

# Seeds: generated streams, plus fuzz/regress/TARGET/, inputs that once
# crashed a target (each file says in its name what it caught).
$(FB)/corpus/.stamp: $(FB)/gen_corpus $(wildcard fuzz/regress/*/*)
	rm -rf $(FB)/corpus
	mkdir -p $(FB)/corpus/fuzz_rx_stream $(FB)/corpus/fuzz_codec_roundtrip
	$< $(FB)/corpus/fuzz_rx_stream $(FB)/corpus/fuzz_codec_roundtrip
	for d in fuzz/regress/*/; do \
		t=$$(basename "$$d"); \
		cp "$$d"* $(FB)/corpus/"$$t"/ || exit 1; \
	done
	touch $@

corpus: $(FB)/corpus/.stamp

run: build corpus
	@fuzz/run-fuzz.sh $(FB) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
