/* http_metrics.c - the server's own Prometheus series: requests answered per route and status
 * code, time to answer per route, build info; and the built-in /metrics handler. */
#include "libshop/http_internal.h"
#include "libshop/metrics.h"
#include "shop_version.h"

#include <stdatomic.h>
#include <stdlib.h>

/* Status codes counted per route; anything else lands in the last slot as "other". */
static const int counted_codes[] = {200, 201, 204, 301, 304, 400, 404, 405,
                                    406, 413, 415, 500, 502, 503, 504, 507};
#define NCODES (sizeof(counted_codes) / sizeof(counted_codes[0]) + 1)

static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   0.5,   1,    2.5};

struct route_stats {
    const char *label; /* route pattern, or "unmatched" */
    _Atomic unsigned long long codes[NCODES];
    struct shop_histogram duration;
};

static struct route_stats *g_stats; /* g_nroutes + 1 (unmatched) */
static size_t g_nroutes;

void http_stats_setup(const struct shop_route *routes, size_t nroutes)
{
    g_nroutes = nroutes;
    g_stats = shop_xcalloc(g_nroutes + 1, sizeof(*g_stats));
    for (size_t i = 0; i <= g_nroutes; i++) {
        g_stats[i].label = i < g_nroutes ? routes[i].pattern : "unmatched";
        g_stats[i].duration = (struct shop_histogram)SHOP_HISTOGRAM_INIT(
            "http_request_duration_seconds", "", SHOP_NUM_JS, duration_bounds,
            sizeof(duration_bounds) / sizeof(duration_bounds[0]));
    }
}

void http_stats_free(void)
{
    free(g_stats);
    g_stats = NULL;
}

struct route_stats *http_stats_route(size_t i)
{
    return &g_stats[i];
}

struct route_stats *http_stats_unmatched(void)
{
    return &g_stats[g_nroutes];
}

static size_t code_slot(int status)
{
    for (size_t i = 0; i < NCODES - 1; i++)
        if (counted_codes[i] == status)
            return i;
    return NCODES - 1;
}

void http_stats_count(struct route_stats *s, int status, double secs)
{
    atomic_fetch_add(&s->codes[code_slot(status)], 1);
    shop_histogram_observe(&s->duration, secs);
}

static void render_http_metrics(struct shop_buf *out)
{
    shop_buf_puts(out, "# HELP http_requests_total Requests answered, by route and status code\n"
                       "# TYPE http_requests_total counter\n");
    for (size_t r = 0; r <= g_nroutes; r++) {
        for (size_t c = 0; c < NCODES; c++) {
            unsigned long long n = atomic_load(&g_stats[r].codes[c]);
            if (!n)
                continue;
            shop_buf_puts(out, "http_requests_total{route=\"");
            shop_metrics_label(out, g_stats[r].label);
            if (c < NCODES - 1)
                shop_buf_printf(out, "\",code=\"%d\"} %llu\n", counted_codes[c], n);
            else
                shop_buf_printf(out, "\",code=\"other\"} %llu\n", n);
        }
    }
    shop_buf_puts(out, "# HELP http_request_duration_seconds Time to answer, by route\n"
                       "# TYPE http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= g_nroutes; r++) {
        if (!atomic_load(&g_stats[r].duration.count))
            continue;
        struct shop_buf lbl;
        shop_buf_init(&lbl, 1024);
        shop_buf_puts(&lbl, "route=\"");
        shop_metrics_label(&lbl, g_stats[r].label);
        shop_buf_putc(&lbl, '"');
        shop_histogram_render(&g_stats[r].duration, lbl.data, 0, out);
        shop_buf_cleanup(&lbl);
    }
    shop_buf_printf(out,
                    "# HELP shop_build_info Service name and version\n"
                    "# TYPE shop_build_info gauge\n"
                    "shop_build_info{service=\"%s\",version=\"%s\"} 1\n",
                    shop_http_conf->service, SHOP_VERSION);
}

void http_metrics_handler(struct shop_req *req)
{
    struct shop_buf out;
    shop_buf_init(&out, 4 * 1024 * 1024);
    shop_metrics_render(&out);
    render_http_metrics(&out);
    shop_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
               out.len);
    shop_buf_cleanup(&out);
}
