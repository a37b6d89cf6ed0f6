// SPDX-License-Identifier: GPL-2.0
/*
 * wss:// bursts through a 4 KiB (8 KiB doubled) send buffer, the stall of
 * a corked TCP tail under kTLS: see ws_ktls_cases.h.
 */
#define KTLS_SNDBUF	4096
#include "ws_ktls_cases.h"
