/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws: internal interfaces between the parts of the module.
 */
#ifndef _NBDWS_H
#define _NBDWS_H

#include <linux/types.h>

int nbdws_genl_init(void);
void nbdws_genl_exit(void);

#endif /* _NBDWS_H */
