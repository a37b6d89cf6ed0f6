// SPDX-License-Identifier: GPL-2.0
/*
 * Probe: alloc_workqueue() takes WQ_PERCPU, which states that a workqueue
 * is per-CPU (6.17+). It is an enum constant, so #ifdef cannot see it.
 */
#include <linux/workqueue.h>

struct workqueue_struct *nbdws_probe(void);
struct workqueue_struct *nbdws_probe(void)
{
	return alloc_workqueue("nbdws_probe", WQ_PERCPU, 0);
}
