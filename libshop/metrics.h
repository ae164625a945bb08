/* metrics.h - lock-free counters and fixed-bucket histograms rendered as Prometheus text 0.0.4. */
#ifndef SHOP_METRICS_H
#define SHOP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

#include "libshop/json.h"
#include "libshop/util.h"

#define SHOP_HIST_MAX_BUCKETS 16

struct shop_counter {
    const char *name;
    const char *help;
    enum shop_num_style style; /* how the value prints: JS 3, Python 3.0 */
    _Atomic double value;
    struct shop_counter *next;
};

struct shop_histogram {
    const char *name;
    const char *help;
    enum shop_num_style style;
    const double *bounds; /* ascending upper bounds, +Inf implied */
    size_t nbounds;       /* <= SHOP_HIST_MAX_BUCKETS */
    _Atomic unsigned long long counts[SHOP_HIST_MAX_BUCKETS + 1];
    _Atomic unsigned long long count;
    _Atomic double sum;
    struct shop_histogram *next;
};

#define SHOP_COUNTER_INIT(n, h, st)                                                                \
    {                                                                                              \
        .name = (n), .help = (h), .style = (st)                                                    \
    }
#define SHOP_HISTOGRAM_INIT(n, h, st, b, nb)                                                       \
    {                                                                                              \
        .name = (n), .help = (h), .style = (st), .bounds = (b), .nbounds = (nb)                    \
    }

/* Adds to the process-wide registry rendered by shop_metrics_render (call before serving). */
void shop_counter_register(struct shop_counter *c);
void shop_histogram_register(struct shop_histogram *h);

void shop_counter_add(struct shop_counter *c, double v);
void shop_histogram_observe(struct shop_histogram *h, double v);

/* Renders one histogram's series with an optional label set (e.g. "route=\"/x\"") and
 * optional HELP/TYPE header. Returns 0 or -1 when out is full. */
int shop_histogram_render(struct shop_histogram *h, const char *labels, int header,
                          struct shop_buf *out);
/* Renders every registered metric. */
int shop_metrics_render(struct shop_buf *out);

/* Escapes a Prometheus label value (\\, \", \n) into out. */
int shop_metrics_label(struct shop_buf *out, const char *value);

#endif
