/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: formatting shared by the commands: human sizes, flag and enum
 * names, and JSON (json-c) printing for -j.
 */
#ifndef _NBDCTL_OUTPUT_H
#define _NBDCTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* "1.0 GiB", "512 B" */
void fmt_size(uint64_t bytes, char *buf, size_t len);
/* Space-separated transmission flag names ("flush fua trim"), "-" if none. */
void fmt_tflags(uint16_t flags, char *buf, size_t len);
void fmt_cflags(uint32_t flags, char *buf, size_t len);

json_object *json_tflags(uint16_t flags);
json_object *json_cflags(uint32_t flags);
/* json-c has no unsigned 64-bit constructor in every version: use int64. */
json_object *json_u64(uint64_t v);
/* Print @obj on one line to stdout and drop the reference. */
void json_print(json_object *obj);

const char *dev_state_name(uint32_t state);
const char *conn_state_name(uint32_t state);
const char *transport_name(uint32_t transport);
const char *reason_name(uint32_t reason);
const char *event_name(uint32_t event);

#endif /* _NBDCTL_OUTPUT_H */
