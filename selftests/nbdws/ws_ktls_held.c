// SPDX-License-Identifier: GPL-2.0
/*
 * wss:// bursts through a 4 KiB (8 KiB doubled) send buffer to a peer
 * whose receive buffer is 16 KiB (32 KiB doubled), so that TCP refuses
 * the rest of a record kTLS has taken from us: see ws_ktls_cases.h.
 */
#define KTLS_SNDBUF	4096
#define KTLS_PEER_RCVBUF	"16384"
#include "ws_ktls_cases.h"
