/* util.h - allocation that never returns NULL, a bounded growable byte buffer, per-thread
 * objects, clocks. */
#ifndef SHOP_UTIL_H
#define SHOP_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>
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

/* A per-thread object (a backend connection, a scratch buffer): made by make() on the thread's
 * first shop_tls_get, destroyed by destroy() when the thread ends. Define it statically:
 *     static struct shop_tls conns = SHOP_TLS(conn_new, conn_free);  */
struct shop_tls {
    void *(*make)(void); /* may return NULL: shop_tls_get then returns NULL and tries again later */
    void (*destroy)(void *);
    atomic_bool ready; /* key created */
    pthread_key_t key;
};
#define SHOP_TLS(make_fn, destroy_fn)                                                              \
    {                                                                                              \
        .make = (make_fn), .destroy = (destroy_fn)                                                 \
    }
void *shop_tls_get(struct shop_tls *t);
/* Destroys the calling thread's object now, if it has one (a clean shutdown of that thread). */
void shop_tls_drop(struct shop_tls *t);

/* Monotonic clock in nanoseconds. */
long long shop_now_ns(void);
/* The time ms milliseconds from now on the given clock, for pthread_cond_timedwait. */
struct timespec shop_deadline(clockid_t clock, long ms);
/* ms milliseconds as a struct timeval for socket and client-library timeouts; at least 1 ms,
 * as a zero timeval means "no timeout" to most of them. */
struct timeval shop_ms_timeval(long ms);
/* Sleep for ms milliseconds (restarts on EINTR). */
void shop_sleep_ms(long ms);

/* Appends s, escaped as the contents of a JSON string (no quotes), to the fixed buffer out at *len
 * (advanced). Stops before an escape that would leave fewer than reserve + 1 bytes of size free,
 * so a truncated string never ends in half an escape and room stays for what follows. */
void shop_json_escape_to(char *out, size_t *len, size_t size, size_t reserve, const char *s);

#endif
