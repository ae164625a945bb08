/* test_log.c - the log writer: access lines from many threads arrive whole, none lost, in order
 * before any ordinary line that follows them, and a lone access line reaches the output by itself
 * (the batch flusher), with no flush call, and a reader that has stopped reading does not hold up
 * the threads that log access lines while the gathered lines fit the buffers. Past the budget of
 * access lines a second, requests are counted in one line instead. */
#include "check.h"
#include "libshop/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

enum { THREADS = 4, PER_THREAD = 3000 };

static char *read_all(FILE *f)
{
    fflush(f);
    long n = lseek(fileno(f), 0, SEEK_END);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    ssize_t r = pread(fileno(f), s, (size_t)n, 0);
    s[r > 0 ? r : 0] = '\0';
    return s;
}

static void *writer(void *arg)
{
    int t = (int)(long)arg;
    for (int i = 0; i < PER_THREAD; i++)
        shop_log_access("rid=t%d-%d method=GET path=\"/x\" status=200 ms=0.001", t, i);
    return NULL;
}

/* Every line is one whole access line or the marker; counts per thread are complete and in order.
 */
static bool lines_ok(const char *text)
{
    int next[THREADS] = {0}, bad = 0, marker_at = -1, n = 0;
    for (const char *p = text; *p; n++) {
        const char *e = strchr(p, '\n');
        if (!e)
            break;
        int t, i;
        if (sscanf(p, "<6>svc=logtest rid=t%d-%d method=GET", &t, &i) == 2 && t >= 0 &&
            t < THREADS && i == next[t])
            next[t]++;
        else if (strncmp(p, "<6>svc=logtest marker", 21) == 0)
            marker_at = n;
        else
            bad++;
        p = e + 1;
    }
    bool ok = bad == 0 && marker_at == n - 1;
    for (int t = 0; t < THREADS; t++)
        ok = ok && next[t] == PER_THREAD;
    return ok;
}

enum { SLOW_LINES = 600 }; /* about 48 KB of access lines: more than the old 16 KB batch */

static volatile int slow_done;

static void *slow_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < SLOW_LINES; i++)
        shop_log_access("rid=slow-%d method=GET path=\"/slow\" status=200 ms=0.001", i);
    __atomic_store_n(&slow_done, 1, __ATOMIC_SEQ_CST);
    shop_log_info("slow-end"); /* writes out what is gathered, then itself: waits for the reader */
    return NULL;
}

/* Stderr is a pipe filled to the brim that nobody reads for a while: the access lines a request
 * thread logs meanwhile are only copied, not written, so it finishes. Then the reader wakes up
 * and every line arrives once, in order. */
static void slow_reader(bool *unblocked, bool *complete)
{
    int p[2];
    *unblocked = *complete = false;
    if (pipe(p) != 0 || dup2(p[1], STDERR_FILENO) < 0)
        return;
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    static char fill[4096];
    memset(fill, '\n', sizeof(fill));
    while (write(p[1], fill, sizeof(fill)) > 0 || write(p[1], fill, 1) > 0)
        ;
    fcntl(p[1], F_SETFL, 0);
    pthread_t t;
    pthread_create(&t, NULL, slow_writer, NULL);
    for (int i = 0; i < 300 && !__atomic_load_n(&slow_done, __ATOMIC_SEQ_CST); i++) {
        const struct timespec tick = {0, 10 * 1000000L};
        nanosleep(&tick, NULL);
    }
    *unblocked = __atomic_load_n(&slow_done, __ATOMIC_SEQ_CST);

    size_t cap = 1 << 20, n = 0;
    char *text = calloc(1, cap);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 500 && text && !strstr(text, "slow-end"); i++) {
        ssize_t r = read(p[0], text + n, cap - n - 1);
        if (r > 0) {
            n += (size_t)r;
            text[n] = '\0';
            continue;
        }
        const struct timespec tick = {0, 10 * 1000000L};
        nanosleep(&tick, NULL);
    }
    pthread_join(t, NULL);
    int next = 0;
    for (const char *q = text ? strstr(text, "rid=slow-") : NULL; q; q = strstr(q + 1, "rid=slow-"))
        next += atoi(q + 9) == next;
    *complete = next == SLOW_LINES;
    free(text);
    close(p[0]);
    close(p[1]);
}

/* 1000 access lines in a burst with a budget of 100 a second: 100 to 200 are written (the burst
 * may straddle a second), and the first line of a later second reports the rest. */
static void budget(FILE *f, bool *bounded, bool *counted)
{
    shop_log_set_access_max(100);
    for (int i = 0; i < 1000; i++)
        shop_log_access("rid=b%d method=GET path=\"/b\" status=200 ms=0.001", i);
    const struct timespec second = {1, 100 * 1000000L};
    nanosleep(&second, NULL);
    shop_log_access("rid=blast method=GET path=\"/b\" status=200 ms=0.001");
    shop_log_flush();
    shop_log_set_access_max(0);
    char *text = read_all(f);
    unsigned long logged = 0, unlogged = 0, n;
    bool last = false;
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        const char *r = strstr(p, "access log: ");
        if (strstr(p, " rid=b") && strstr(p, " rid=b") < e)
            logged++, last = last || strncmp(strstr(p, " rid=b"), " rid=blast ", 11) == 0;
        else if (r && r < e && sscanf(r, "access log: %lu requests not logged", &n) == 1)
            unlogged += n;
        p = e ? e + 1 : "";
    }
    free(text);
    *bounded = logged >= 101 && logged <= 201;
    *counted = last && logged + unlogged == 1001;
}

int main(void)
{
    int saved_stderr = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    if (saved_stderr < 0 || !f || dup2(fileno(f), STDERR_FILENO) < 0)
        return 1;
    shop_log_init("logtest");
    shop_log_set_access_max(0); /* the budget has its own check, at the end */

    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    shop_log_info("marker");
    char *text = read_all(f);
    bool whole = text && lines_ok(text);
    free(text);

    /* a lone access line gets written without anyone asking (within a few seconds at worst) */
    shop_log_access("rid=lone method=GET path=\"/y\" status=200 ms=0.001");
    int seen = 0;
    for (int i = 0; i < 400 && !seen; i++) {
        const struct timespec tick = {0, 10 * 1000000L};
        nanosleep(&tick, NULL);
        text = read_all(f);
        seen = text && strstr(text, "rid=lone ") != NULL;
        free(text);
    }

    shop_log_set_level("warn"); /* below info: access lines are not written at all */
    shop_log_access("rid=quiet method=GET path=\"/z\" status=200 ms=0.001");
    shop_log_flush();
    text = read_all(f);
    bool quiet = text && !strstr(text, "rid=quiet");
    free(text);

    shop_log_set_level("info");
    bool bounded, counted;
    budget(f, &bounded, &counted);
    bool unblocked, complete;
    slow_reader(&unblocked, &complete);

    dup2(saved_stderr, STDERR_FILENO); /* failures are reported on the real stderr */
    fclose(f);
    CHECK(bounded);
    CHECK(counted);
    CHECK(unblocked);
    CHECK(complete);
    CHECK(whole);
    CHECK(seen);
    CHECK(quiet);
    return check_report("log");
}
