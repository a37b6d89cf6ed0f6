/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one sanitiser for text a peer sent (a WebSocket close reason, an
 * NBD server's error or description, an HTTP status line, a string the
 * kernel hands back): whatever reaches a terminal, a log or JSON output
 * goes through it first, so a hostile peer can neither move the cursor,
 * forge a line of ours nor make our JSON invalid.
 *
 * Kept: printable ASCII and well-formed UTF-8 (RFC 3629) for code points
 * that are not controls. Replaced by one '?' each: C0 controls (including
 * TAB, CR, LF, ESC, NUL), DEL, C1 controls (U+0080..U+009F) and every
 * maximal ill-formed subsequence (stray continuation bytes, overlong
 * forms, surrogates U+D800..U+DFFF, code points above U+10FFFF, sequences
 * cut short). The output is never longer than the input.
 */
#ifndef _NBDWS_PEER_TEXT_H
#define _NBDWS_PEER_TEXT_H

#include <stddef.h>

/*
 * Sanitise @len bytes at @in (not NUL-terminated; NUL counts as a control)
 * into @out, @size bytes, always NUL-terminated when @size > 0. A UTF-8
 * sequence that does not fit whole is left out rather than cut. Returns
 * the length written, not counting the NUL.
 */
size_t peer_text(char *out, size_t size, const void *in, size_t len);

/* The same into a malloc'd string of at most @len bytes; NULL on ENOMEM. */
char *peer_text_dup(const void *in, size_t len);

#endif /* _NBDWS_PEER_TEXT_H */
