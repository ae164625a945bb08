/* util.h - allocation that never returns NULL, and a bounded growable byte buffer. */
#ifndef SHOP_UTIL_H
#define SHOP_UTIL_H

#include <stddef.h>
#include <stdarg.h>
#include <time.h>

/* Allocators that abort() on out-of-memory, so callers have no NULL branch. */
void *shop_xmalloc(size_t n);
void *shop_xcalloc(size_t n, size_t size);
void *shop_xrealloc(void *p, size_t n);
char *shop_xstrdup(const char *s);
char *shop_xstrndup(const char *s, size_t n);

/* A growable buffer with a hard cap given at init. The data is always NUL-terminated
 * (the terminator is not counted in len). Embedded: use init/cleanup. */
struct shop_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void shop_buf_init(struct shop_buf *b, size_t max);
void shop_buf_cleanup(struct shop_buf *b);
void shop_buf_reset(struct shop_buf *b);
/* Append n bytes. Returns 0, or -1 (buffer unchanged) when max would be exceeded. */
int shop_buf_append(struct shop_buf *b, const void *p, size_t n);
int shop_buf_puts(struct shop_buf *b, const char *s);
int shop_buf_putc(struct shop_buf *b, char c);
int shop_buf_printf(struct shop_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic clock in nanoseconds. */
long long shop_now_ns(void);
/* The time ms milliseconds from now on the given clock, for pthread_cond_timedwait. */
struct timespec shop_deadline(clockid_t clock, long ms);
/* Sleep for ms milliseconds (restarts on EINTR). */
void shop_sleep_ms(long ms);

#endif
