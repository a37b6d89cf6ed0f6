/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: slots, each a URL path that becomes one /dev/nbdwsN while
 * a client serves it, and their state machine (DESIGN "Slot states"):
 *
 *   idle -> negotiating -> starting (start hook) -> serving
 *   serving -> held (connection died; the kernel holds I/O)
 *   held -> negotiating (same identity) -> serving (RECONFIGURE, no hook)
 *   held -> stopping (hold expired: DISCONNECT, stop hook) -> idle
 *   serving -> stopping on a close 1000 (the page's Stop): no hold
 *
 * Everything here runs on the loop's thread: event handling and timers
 * in loop context (kernel_submit(), hook_run()), the claim/attach/start
 * calls from the client's session fiber (kernel_call(), hook_run_wait()).
 * A claim is a generation number, so a session whose slot moved on
 * under it (shutdown, device gone) cannot undo what happened since.
 */
#ifndef _RELAY_SLOT_H
#define _RELAY_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "auth.h"
#include "fallback.h"
#include "kernel.h"
#include "loop.h"
#include "nbd_handshake.h"
#include "relay.h"

enum slot_state {
	SLOT_IDLE,
	SLOT_NEGOTIATING,
	SLOT_STARTING,
	SLOT_SERVING,
	SLOT_HELD,
	SLOT_STOPPING,
};

struct slot {
	const struct relay_slot_cfg *cfg;
	time_t since;			/* state entered (unix seconds) */
	unsigned int n;			/* position in relay_cfg->slots */
	enum slot_state state;

	/* The device, while the relay has one for this slot. */
	u64 size;			/* export at CONNECT: a reconnect */
	u32 index;
	u16 tflags;			/* must bring the same */
	bool have_device;
	char device[32];		/* "/dev/nbdwsN" */

	/* The connection serving it. */
	struct fallback *fb;		/* its pump while it runs */
	bool userspace;			/* fallback path */
	bool fb_ended;			/* pump ended: its close code */
	u16 fb_code;
	unsigned int reconnects;
	struct auth_id owner;
	char client[80];		/* peer address, printable */

	/* The session that holds the claim. */
	unsigned int claim;		/* generation; 0: none */
	bool expired;			/* hold ran out while negotiating */
	bool dead_in_start;		/* conn died during the start hook */
	u16 dead_code;

	/* Loop context. */
	bool audit_busy;
	bool stop_hook;			/* the stop sequence runs the hook */
	struct loop_timer hold_timer;
	struct loop_timer audit_timer;
	struct kernel_op stop_op;
	struct kernel_op audit_op;
};

/* Slots of the configuration, NULL past the last. */
struct slot *slot_get(unsigned int n);
unsigned int slots_count(void);
const char *slot_state_name(enum slot_state s);

/*
 * Inside a session fiber, after authentication: claim @sl for @id.
 * 0 with *@gen (pass it back) and *@reconnect (a held device is taken
 * over), or -EBUSY (answer 409).
 */
int slot_claim(struct slot *sl, const struct auth_id *id, unsigned int *gen,
	       bool *reconnect);

/* The negotiation failed before slot_attach(): give the claim back. */
void slot_release(struct slot *sl, unsigned int gen);

/* What slot_attach() hands to the kernel. */
struct slot_conn {
	const struct nbd_export_info *info;
	int fd;				/* a dup goes to the kernel */
	u32 transport;			/* enum nbdws_transport */
	const u8 *preread;
	size_t preread_len;
	u32 ping_ms;
	bool userspace;			/* fallback: @fd is the socketpair */
	const char *peer;		/* printable address */
};

/*
 * Inside the fiber: CONNECT a new device or RECONFIGURE the held one with
 * @c. 0, then the slot is `starting` (new device: call slot_start()) or
 * `serving` (reconnect: *@fresh false). On failure the claim is given
 * back and *@code / *@reason say how to close the client.
 */
int slot_attach(struct slot *sl, unsigned int gen, const struct slot_conn *c,
		bool *fresh, u16 *code, const char **reason);

/*
 * The fallback pump of the connection about to be attached. It runs
 * before CONNECT, which reads the partition table through it; its end
 * (slot_fallback_end()) may come before slot_attach() returns.
 */
void slot_set_fallback(struct slot *sl, unsigned int gen,
		       struct fallback *fb);
/* slot_attach() failed: close the client through its pump, if it runs. */
void slot_stop_fallback(struct slot *sl, u16 code, const char *reason);

/* fallback_end_fn for fallback_start(): @arg is the slot. */
void slot_fallback_end(void *arg, u16 code, const char *reason);

/*
 * Inside the fiber, for a fresh device: run the start hook. 0, the slot
 * serves; else the device was disconnected (the client told *@code /
 * *@reason by the kernel or the pump), the stop hook not run.
 */
int slot_start(struct slot *sl, unsigned int gen, u16 *code,
	       const char **reason);

/* Events of the module, from kernel.c. */
void slots_on_event(const struct kernel_event *ev);

int slots_init(void);
void slots_shutdown(void (*done)(void));
void slots_fini(void);

#endif /* _RELAY_SLOT_H */
