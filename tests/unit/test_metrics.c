/* test_metrics.c - Prometheus text rendering of counters and histograms. */
#include "libshop/metrics.h"
#include "tests/unit/check.h"

static const double bounds[] = {1, 2, 5, 10, 100};

int main(void)
{
    static struct shop_counter items =
        SHOP_COUNTER_INIT("items_added", "running count of items added to cart", SHOP_NUM_JS);
    static struct shop_histogram units =
        SHOP_HISTOGRAM_INIT("units_sold", "Avergae Unit Sale", SHOP_NUM_PYTHON, bounds, 5);
    shop_counter_register(&items);
    shop_histogram_register(&units);
    shop_counter_add(&items, 3);
    shop_histogram_observe(&units, 1);
    shop_histogram_observe(&units, 3);
    shop_histogram_observe(&units, 500);

    struct shop_buf out;
    shop_buf_init(&out, 65536);
    CHECK(shop_metrics_render(&out) == 0);
    CHECK_STR(out.data, "# HELP items_added running count of items added to cart\n"
                        "# TYPE items_added counter\n"
                        "items_added 3\n"
                        "# HELP units_sold Avergae Unit Sale\n"
                        "# TYPE units_sold histogram\n"
                        "units_sold_bucket{le=\"1.0\"} 1.0\n"
                        "units_sold_bucket{le=\"2.0\"} 1.0\n"
                        "units_sold_bucket{le=\"5.0\"} 2.0\n"
                        "units_sold_bucket{le=\"10.0\"} 2.0\n"
                        "units_sold_bucket{le=\"100.0\"} 2.0\n"
                        "units_sold_bucket{le=\"+Inf\"} 3.0\n"
                        "units_sold_count 3.0\n"
                        "units_sold_sum 504.0\n");
    shop_buf_reset(&out);
    CHECK(shop_histogram_render(&units, "route=\"/pay/:id\"", 0, &out) == 0);
    CHECK(strstr(out.data, "units_sold_bucket{route=\"/pay/:id\",le=\"+Inf\"} 3.0\n") != NULL);
    CHECK(strstr(out.data, "units_sold_count{route=\"/pay/:id\"} 3.0\n") != NULL);
    shop_buf_reset(&out);
    shop_metrics_label(&out, "a\"b\\c\nd");
    CHECK_STR(out.data, "a\\\"b\\\\c\\nd");
    shop_buf_cleanup(&out);
    return check_report("metrics");
}
