// SPDX-License-Identifier: GPL-2.0
/*
 * wss:// bursts through a 64 KiB (128 KiB doubled) send buffer: see ws_ktls_cases.h.
 */
#define KTLS_SNDBUF	65536
#include "ws_ktls_cases.h"
