/* metrics.c - Prometheus counters and histograms, updated with atomics from any thread. */
#include "libshop/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static struct shop_counter *counters;
static struct shop_histogram *histograms;

void shop_counter_register(struct shop_counter *c)
{
    struct shop_counter **p = &counters;
    while (*p)
        p = &(*p)->next;
    c->next = NULL;
    *p = c;
}

void shop_histogram_register(struct shop_histogram *h)
{
    struct shop_histogram **p = &histograms;
    while (*p)
        p = &(*p)->next;
    h->next = NULL;
    *p = h;
}

static void atomic_add_double(_Atomic double *a, double v)
{
    double old = atomic_load(a);
    while (!atomic_compare_exchange_weak(a, &old, old + v))
        ;
}

void shop_counter_add(struct shop_counter *c, double v)
{
    atomic_add_double(&c->value, v);
}

void shop_histogram_observe(struct shop_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add(&h->counts[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_add_double(&h->sum, v);
}

static int put_num(struct shop_buf *out, double v, enum shop_num_style st)
{
    char num[40];
    if (isnan(v)) /* the exposition format's spelling; shop_fmt_double would print null */
        return shop_buf_puts(out, "NaN");
    if (isinf(v))
        return shop_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    size_t n = shop_fmt_double(v, st, num, sizeof(num));
    return shop_buf_append(out, num, n);
}

int shop_metrics_label(struct shop_buf *out, const char *value)
{
    int rc = 0;
    for (const char *p = value; *p && rc == 0; p++) {
        if (*p == '\\' || *p == '"')
            rc = shop_buf_putc(out, '\\') || shop_buf_putc(out, *p);
        else if (*p == '\n')
            rc = shop_buf_puts(out, "\\n");
        else
            rc = shop_buf_putc(out, *p);
    }
    return rc;
}

static int series_open(struct shop_buf *out, const char *name, const char *suffix,
                       const char *labels, const char *le)
{
    int rc = shop_buf_printf(out, "%s%s", name, suffix);
    if (!(labels && *labels) && !le)
        return rc || shop_buf_putc(out, ' ');
    rc = rc || shop_buf_putc(out, '{');
    if (labels && *labels)
        rc = rc || shop_buf_puts(out, labels);
    if (le)
        rc = rc || shop_buf_printf(out, "%sle=\"%s\"", labels && *labels ? "," : "", le);
    return rc || shop_buf_puts(out, "} ");
}

int shop_histogram_render(struct shop_histogram *h, const char *labels, int header,
                          struct shop_buf *out)
{
    int rc = 0;
    if (header)
        rc = shop_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    unsigned long long cum = 0;
    char le[40];
    for (size_t i = 0; i <= h->nbounds && rc == 0; i++) {
        cum += atomic_load(&h->counts[i]);
        if (i < h->nbounds)
            shop_fmt_double(h->bounds[i], h->style == SHOP_NUM_JS ? SHOP_NUM_JS : SHOP_NUM_PYTHON,
                            le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        rc = series_open(out, h->name, "_bucket", labels, le) ||
             put_num(out, (double)cum, h->style) || shop_buf_putc(out, '\n');
    }
    rc = rc || series_open(out, h->name, "_count", labels, NULL) ||
         put_num(out, (double)atomic_load(&h->count), h->style) || shop_buf_putc(out, '\n');
    rc = rc || series_open(out, h->name, "_sum", labels, NULL) ||
         put_num(out, atomic_load(&h->sum), h->style) || shop_buf_putc(out, '\n');
    return rc ? -1 : 0;
}

int shop_metrics_render(struct shop_buf *out)
{
    int rc = 0;
    for (struct shop_counter *c = counters; c && rc == 0; c = c->next) {
        rc = shop_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s ", c->name, c->help, c->name,
                             c->name) ||
             put_num(out, atomic_load(&c->value), c->style) || shop_buf_putc(out, '\n');
    }
    for (struct shop_histogram *h = histograms; h && rc == 0; h = h->next)
        rc = shop_histogram_render(h, NULL, 1, out);
    return rc ? -1 : 0;
}
