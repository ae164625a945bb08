/* log.c - one line per event, never interleaved between threads. Ordinary lines are written at
 * once; access lines (one per request, the bulk of the output) are gathered in one of two
 * buffers, and a flusher thread writes a buffer out when it is half full or ACCESS_DELAY_MS after
 * its first line, while requests go on filling the other: a request thread only copies its line
 * under a lock and never waits for a write(2) unless both buffers are full. Any ordinary line
 * first writes out the pending batch, so the order stays true.
 *
 * Access lines have a budget, SHOP_ACCESS_LOG_MAX a second (default 1000, 0: no limit): past it a
 * request is counted, not formatted or written, and one ordinary line says how many went
 * unlogged. At tens of thousands of requests a second every line would cost megabytes a second
 * of file or journal writes, and the kernel time they take shows in every request's latency;
 * journald would drop most of them anyway (RateLimitBurst). /metrics counts every request. */
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum { ACCESS_DELAY_MS = 50, LINE_MAX_LEN = 2048 };

enum { BATCH_SIZE = 65536, BATCH_WAKE = BATCH_SIZE / 2 };

/* out_lock guards the filling buffer (cur) and the flusher's start; write_lock orders the
 * writes: whoever holds it swaps the buffers and writes the full one, so batches leave in the
 * order they were filled. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_pending; /* CLOCK_MONOTONIC, set up with the flusher */
static struct batch {
    size_t len;
    char data[BATCH_SIZE];
} batches[2];
static struct batch *cur = &batches[0];
static bool flusher_tried, flusher_running;

int shop_log_level = SHOP_LOG_INFO;
static const char *log_service = "shop";
static bool log_json; /* LOG_FORMAT=json */

enum { ACCESS_MAX_DEFAULT = 1000 };
static unsigned access_max = ACCESS_MAX_DEFAULT;
static _Atomic long long access_second; /* the monotonic second being counted */
static atomic_uint access_count;        /* access lines in that second */
static atomic_ulong access_unlogged;    /* over the budget since the last report */

void shop_log_init(const char *service)
{
    log_service = service;
    const char *fmt = getenv("LOG_FORMAT");
    log_json = fmt && strcasecmp(fmt, "json") == 0;
}

void shop_log_set_access_max(unsigned per_second)
{
    access_max = per_second;
}

/* True when this request's access line fits the second's budget. The first request of a new
 * second reports how many went unlogged before it. */
static bool access_budget(void)
{
    if (access_max == 0)
        return true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    long long sec = ts.tv_sec, seen = atomic_load(&access_second);
    if (sec != seen && atomic_compare_exchange_strong(&access_second, &seen, sec)) {
        atomic_store(&access_count, 0);
        unsigned long n = atomic_exchange(&access_unlogged, 0);
        if (n > 0)
            shop_log_info("access log: %lu requests not logged (over SHOP_ACCESS_LOG_MAX=%u "
                          "lines a second; /metrics counts every request)",
                          n, access_max);
    }
    if (atomic_fetch_add(&access_count, 1) < access_max)
        return true;
    atomic_fetch_add(&access_unlogged, 1);
    return false;
}

int shop_log_set_level(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"fatal", SHOP_LOG_ERR},    {"error", SHOP_LOG_ERR}, {"warn", SHOP_LOG_WARN},
        {"warning", SHOP_LOG_WARN}, {"info", SHOP_LOG_INFO}, {"debug", SHOP_LOG_DEBUG},
        {"trace", SHOP_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            shop_log_level = names[i].level;
            return 0;
        }
    }
    return -1;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Writes out the buffer being filled and then line (len 0: none), with out_lock held only for
 * the swap, so requests go on filling the other buffer during the write. */
static void drain(const char *line, size_t len)
{
    pthread_mutex_lock(&write_lock);
    pthread_mutex_lock(&out_lock);
    struct batch *full = cur;
    cur = full == &batches[0] ? &batches[1] : &batches[0];
    pthread_mutex_unlock(&out_lock);
    write_all(full->data, full->len);
    full->len = 0; /* before write_lock is let go: the next swap finds it empty */
    write_all(line, len);
    pthread_mutex_unlock(&write_lock);
}

void shop_log_flush(void)
{
    int saved = errno;
    drain(NULL, 0);
    errno = saved;
}

/* The flusher sleeps until a batch starts, lets it gather until half full or ACCESS_DELAY_MS,
 * and writes it. */
static void *flusher(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&out_lock);
        while (cur->len == 0)
            pthread_cond_wait(&out_pending, &out_lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += ACCESS_DELAY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (cur->len < BATCH_WAKE &&
               pthread_cond_timedwait(&out_pending, &out_lock, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&out_lock);
        drain(NULL, 0);
    }
    return NULL;
}

/* Caller holds out_lock. Without a flusher thread lines are written at once. */
static void start_flusher(void)
{
    sigset_t all, old;
    pthread_condattr_t attr;
    pthread_t t;
    flusher_tried = true;
    if (pthread_condattr_init(&attr) != 0)
        return;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&out_pending, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the service's threads */
    flusher_running = pthread_create(&t, NULL, flusher, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (flusher_running) {
        pthread_detach(t);
        atexit(shop_log_flush);
    }
}

/* Formats "<level>svc=NAME " + fmt (+ ": suffix") + newline into line; returns its length. */
static size_t format_text(char *line, size_t size, int level, const char *suffix, const char *fmt,
                          va_list ap)
{
    int n = snprintf(line, size, "<%d>svc=%s ", level, log_service);
    if (n < 0)
        return 0;
    int m = vsnprintf(line + n, size - (size_t)n, fmt, ap);
    if (m < 0)
        return 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > size - 2)
        len = size - 2;
    if (suffix) {
        int k = snprintf(line + len, size - len, ": %s", suffix);
        if (k > 0)
            len += (size_t)k;
        if (len > size - 2)
            len = size - 2;
    }
    line[len++] = '\n';
    return len;
}

/* LOG_FORMAT=json: one object per line with the OpenTelemetry log data model's trace_id and
 * span_id, the request id, level, service and message. */
static size_t format_json(char *line, size_t size, int level, const char *suffix, const char *fmt,
                          va_list ap)
{
    static const char *names[8] = {"error", "error", "error", "error",
                                   "warn",  "info",  "info",  "debug"};
    char msg[LINE_MAX_LEN], tid[33], sid[17], ts[40];
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m < 0)
        return 0;
    if (suffix && (size_t)m < sizeof(msg))
        snprintf(msg + m, sizeof(msg) - (size_t)m, ": %s", suffix);
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    size_t len = 0;
    int n = snprintf(line, size, "{\"timestamp\":\"%s.%03ldZ\",\"level\":\"%s\",\"service\":\"", ts,
                     now.tv_nsec / 1000000, names[level & 7]);
    if (n < 0)
        return 0;
    len = (size_t)n;
    shop_json_escape_to(line, &len, size, 160, log_service);
    len += (size_t)snprintf(line + len, size - len, "\",\"message\":\"");
    shop_json_escape_to(line, &len, size, 160, msg);
    line[len++] = '"';
    const struct shop_span *span = shop_span_current();
    if (shop_trace_ids(tid, sid)) {
        n = snprintf(line + len, size - len, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"", tid, sid);
        len += n > 0 ? (size_t)n : 0;
    }
    if (span && span->request_id) {
        len += (size_t)snprintf(line + len, size - len, ",\"request_id\":\"");
        shop_json_escape_to(line, &len, size, 160, span->request_id);
        line[len++] = '"';
    }
    line[len++] = '}';
    line[len++] = '\n';
    return len;
}

static size_t format_line(char *line, size_t size, int level, const char *suffix, const char *fmt,
                          va_list ap)
{
    return log_json ? format_json(line, size, level, suffix, fmt, ap)
                    : format_text(line, size, level, suffix, fmt, ap);
}

static void vlog(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[LINE_MAX_LEN];
    size_t len = format_line(line, sizeof(line), level, suffix, fmt, ap);
    if (len == 0)
        return;
    drain(line, len);
}

void shop_log_access(const char *fmt, ...)
{
    if (SHOP_LOG_INFO > shop_log_level || !access_budget())
        return;
    int saved = errno;
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    size_t len = format_line(line, sizeof(line), SHOP_LOG_INFO, NULL, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&out_lock);
    if (!flusher_tried)
        start_flusher();
    bool fits = flusher_running && cur->len + len <= BATCH_SIZE;
    if (fits) {
        size_t was = cur->len;
        memcpy(cur->data + was, line, len);
        cur->len = was + len;
        if (was == 0 || (was < BATCH_WAKE && cur->len >= BATCH_WAKE))
            pthread_cond_signal(&out_pending);
    }
    pthread_mutex_unlock(&out_lock);
    if (!fits) /* no flusher, or both buffers full: this thread writes */
        drain(line, len);
    errno = saved;
}

void shop_log(int level, const char *fmt, ...)
{
    if (level > shop_log_level)
        return;
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
    errno = saved;
}

void shop_log_warn(const char *fmt, ...)
{
    int saved = errno;
    if (SHOP_LOG_WARN <= shop_log_level) {
        va_list ap;
        va_start(ap, fmt);
        vlog(SHOP_LOG_WARN, strerror(saved), fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

void shop_log_warnx(const char *fmt, ...)
{
    int saved = errno;
    if (SHOP_LOG_WARN <= shop_log_level) {
        va_list ap;
        va_start(ap, fmt);
        vlog(SHOP_LOG_WARN, NULL, fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

void shop_log_info(const char *fmt, ...)
{
    int saved = errno;
    if (SHOP_LOG_INFO <= shop_log_level) {
        va_list ap;
        va_start(ap, fmt);
        vlog(SHOP_LOG_INFO, NULL, fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

void shop_fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(SHOP_LOG_ERR, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}
