/* test_log.c - the log writer: access lines from many threads arrive whole, none lost, in order
 * before any ordinary line that follows them, and a lone access line reaches the output by itself
 * (the batch flusher), with no flush call. */
#include "check.h"
#include "libshop/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    int saved_stderr = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    if (saved_stderr < 0 || !f || dup2(fileno(f), STDERR_FILENO) < 0)
        return 1;
    shop_log_init("logtest");

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

    dup2(saved_stderr, STDERR_FILENO); /* failures are reported on the real stderr */
    fclose(f);
    CHECK(whole);
    CHECK(seen);
    CHECK(quiet);
    return check_report("log");
}
