// SPDX-License-Identifier: GPL-2.0
/*
 * The WebSocket transport cases of ws_peer_cases.h with the kernel in the
 * ws-server role (NBDWS_TRANSPORT_WS_SERVER): the scripted peer connects as
 * the WebSocket client and serves NBD, as a browser page does; the kernel
 * sends unmasked frames and must reject unmasked ones.
 */
#define WS_KERNEL_SERVER	1
#include "ws_peer_cases.h"
