/* util.c - allocation helpers that abort on OOM and the bounded byte buffer. */
#include "libshop/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t n)
{
    fprintf(stderr, "<2>out of memory allocating %zu bytes\n", n);
    abort();
}

void *shop_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *shop_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *shop_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *shop_xstrdup(const char *s)
{
    return shop_xstrndup(s, strlen(s));
}

char *shop_xstrndup(const char *s, size_t n)
{
    char *p = shop_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void shop_buf_init(struct shop_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void shop_buf_cleanup(struct shop_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void shop_buf_reset(struct shop_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int shop_buf_append(struct shop_buf *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = shop_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int shop_buf_puts(struct shop_buf *b, const char *s)
{
    return shop_buf_append(b, s, strlen(s));
}

int shop_buf_putc(struct shop_buf *b, char c)
{
    return shop_buf_append(b, &c, 1);
}

int shop_buf_printf(struct shop_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return shop_buf_append(b, small, (size_t)n);
    char *big = shop_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = shop_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;

static pthread_key_t tls_key(struct shop_tls *t)
{
    if (!atomic_load_explicit(&t->ready, memory_order_acquire)) {
        pthread_mutex_lock(&tls_mu);
        if (!atomic_load_explicit(&t->ready, memory_order_relaxed)) {
            if (pthread_key_create(&t->key, t->destroy) != 0)
                abort(); /* out of keys: a build with more per-thread objects than the system has */
            atomic_store_explicit(&t->ready, true, memory_order_release);
        }
        pthread_mutex_unlock(&tls_mu);
    }
    return t->key;
}

void *shop_tls_get(struct shop_tls *t)
{
    pthread_key_t key = tls_key(t);
    void *p = pthread_getspecific(key);
    if (!p && (p = t->make()) != NULL && pthread_setspecific(key, p) != 0)
        abort(); /* ENOMEM, like the x allocators */
    return p;
}

void shop_tls_drop(struct shop_tls *t)
{
    pthread_key_t key = tls_key(t);
    void *p = pthread_getspecific(key);
    if (p) {
        pthread_setspecific(key, NULL);
        t->destroy(p);
    }
}

struct timeval shop_ms_timeval(long ms)
{
    if (ms < 1)
        ms = 1;
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

long long shop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct timespec shop_deadline(clockid_t clock, long ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void shop_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void shop_json_escape_to(char *out, size_t *len, size_t size, size_t reserve, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8] = {(char)*p};
        size_t n = 1;
        if (*p == '"' || *p == '\\') {
            e[0] = '\\';
            e[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20) {
            n = (size_t)snprintf(e, sizeof(e), "\\u%04x", *p);
        }
        if (*len + n + reserve >= size)
            return;
        memcpy(out + *len, e, n);
        *len += n;
    }
}
