/* work.h - dispatch's pure logic (no I/O): reading the order id from a message, the per-order
 * record kept in Redis (how often an order was tried, whether it was dispatched or
 * dead-lettered), the simulated work's step delays and the DISPATCH_ERROR_PERCENT decision. */
#ifndef DISPATCH_WORK_H
#define DISPATCH_WORK_H

#include <stdbool.h>
#include <stddef.h>

/* The longest order id accepted (payment's are 36-character UUIDs): an id is part of a Redis
 * key and of a log line. */
#define WORK_ORDERID_MAX 256

/* Reads the order id of a message body (len bytes, not NUL-terminated). Returns a new heap
 * string, or NULL with *why set when the body is not JSON, not an object, has no string
 * `orderid` (the reference crashed on the last two, Q-DI1), or one that is empty, longer than
 * WORK_ORDERID_MAX bytes or holds a NUL. */
char *work_order_id(const char *body, size_t len, const char **why);

/* ---- the per-order record ------------------------------------------------------------------
 * Redis key work_record_key(id) holds a JSON object {"state": S, "attempts": N, "at": T}:
 * S is "working" (a redelivery of the order is being processed, or was when dispatch died),
 * "done" (dispatched) or "dead" (moved to the dead-letter queue); N counts the deliveries that
 * started work; T is the Unix time of the last change. A value that is not such an object (a
 * foreign or damaged value) reads as no record. The transitions are pure functions of the
 * current value (cur, NULL when the key does not exist) for shop_redis_update: each returns 0
 * with *out the new value to write (a heap string), or a positive outcome and writes nothing. */

enum work_outcome {
    WORK_WRITE = 0,
    WORK_DONE_BEFORE = 1, /* the order was dispatched already: a duplicate delivery */
    WORK_DEAD_BEFORE = 2, /* the order was dead-lettered already */
    WORK_TOO_MANY = 3,    /* this delivery would exceed max_attempts */
};

/* "dispatch:order:" + id, a new heap string. */
char *work_record_key(const char *orderid);
/* A redelivered message starts work: attempts + 1 and state "working"; WORK_TOO_MANY when the
 * attempts before it already reached max_attempts. Only redeliveries call it (a first delivery
 * goes straight to work_record_done: one Redis update per order in the common case), so a
 * redelivery that finds no record counts the first delivery as one attempt. */
int work_record_begin(const char *cur, size_t len, long max_attempts, long long now, char **out);
/* The order was dispatched: state "done" (WORK_DONE_BEFORE/WORK_DEAD_BEFORE when another
 * delivery got there first). */
int work_record_done(const char *cur, size_t len, long long now, char **out);
/* The order was dead-lettered: state "dead" (WORK_DONE_BEFORE when it was dispatched). */
int work_record_dead(const char *cur, size_t len, long long now, char **out);
/* Reads a record: its state ("working", "done", "dead") and attempts; false for no record. */
bool work_record_read(const char *cur, size_t len, const char **state, long *attempts);

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
