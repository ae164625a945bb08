/* work.h - dispatch's pure logic (no I/O): reading the order id from a message, the simulated
 * work's step delays and the DISPATCH_ERROR_PERCENT decision. */
#ifndef DISPATCH_WORK_H
#define DISPATCH_WORK_H

#include <stdbool.h>
#include <stddef.h>

/* Reads the order id of a message body (len bytes, not NUL-terminated). Returns a new heap
 * string, or NULL with *why set when the body is not JSON, not an object, or has no string
 * `orderid` (the reference crashed on the last two, Q-DI1). */
char *work_order_id(const char *body, size_t len, const char **why);

/* The delay of one work step: fixed_ms when >= 0 (DISPATCH_DELAY_MS), else the reference's
 * 42 + r % 42 ms (42-83 ms). */
long work_step_delay_ms(long fixed_ms, unsigned r);

/* Whether an order is marked as failed: true for percent% of the values of r (percent is
 * clamped to 0..100). */
bool work_fails(long percent, unsigned r);

/* Copies at most max bytes of a body into out for a log line, replacing bytes outside
 * printable ASCII with '.', and returns out. out must hold max + 1 bytes. */
char *work_excerpt(const char *body, size_t len, char *out, size_t max);

#endif
