// SPDX-License-Identifier: GPL-2.0
/*
 * The WebSocket transport cases of ws_peer_cases.h with the kernel in the
 * ws-client role (NBDWS_TRANSPORT_WS_CLIENT): the scripted peer listens as
 * the WebSocket server, the test dials it as nbdctl does for ws:// URIs,
 * and the kernel masks every frame it sends and must reject masked ones.
 */
#define WS_KERNEL_SERVER	0
#include "ws_peer_cases.h"
