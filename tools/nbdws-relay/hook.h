/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: the state hook, nbd-proxy's contract: `HOOK start SLOT`
 * once the slot's device exists, `HOOK stop SLOT` once it is gone. The
 * environment carries NBDWS_SLOT, NBDWS_DEVICE (/dev/nbdwsN) and
 * NBDWS_INDEX. Runs are serialised per slot (a stop never overtakes the
 * start before it), each bounded by relay_cfg->hook_ms (then SIGKILL), and
 * never block the loop: the child is watched through a pidfd.
 */
#ifndef _RELAY_HOOK_H
#define _RELAY_HOOK_H

#include <stdbool.h>

#include "loop.h"

struct hook_run;

/* Called from the loop when the run ended: 0 for exit status 0, else -1. */
typedef void (*hook_done_fn)(void *arg, int result);

/*
 * Queue `relay_cfg->state_hook ACTION SLOT` behind the runs already queued
 * for @slot_name (a string that outlives the run). With no hook
 * configured, @done runs (deferred) with 0. Returns 0 or -ENOMEM.
 */
int hook_run(const char *action, const char *slot_name, const char *device,
	     unsigned int index, hook_done_fn done, void *arg);

/*
 * Inside a fiber: hook_run() and wait for the result (0 or -1), or
 * -ECANCELED at once if the fiber is cancelled (the run goes on).
 */
int hook_run_wait(const char *action, const char *slot_name,
		  const char *device, unsigned int index);

/* Runs still queued or running (shutdown waits for them). */
unsigned int hook_pending(void);

#endif /* _RELAY_HOOK_H */
