// SPDX-License-Identifier: GPL-2.0
/* Probe: struct sock has sk_use_task_frag. */
#include <net/sock.h>

void nbdws_probe(struct sock *sk);
void nbdws_probe(struct sock *sk)
{
	sk->sk_use_task_frag = false;
}
