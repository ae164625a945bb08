/* routes.c - the ratings service's handlers: the health probe, a SKU's average, and a vote
 * checked against the catalogue and added by one atomic statement. */
#include "services/ratings/routes.h"
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/mysql.h"
#include "libshop/util.h"
#include "services/ratings/ratecalc.h"

#include <stdio.h>
#include <string.h>

struct ratings_config ratings_cfg;

#define DB_DOWN_TEXT         "database not available"
#define CATALOGUE_TIMEOUT_MS 5000
#define CATALOGUE_BODY_MAX   (1024 * 1024)
#define RATE_ATTEMPTS        5

/* One statement adds a vote: the first vote inserts (sku, score, 1); later votes compute
 * round_half_up((avg*count + score) / (count + 1), 2) from the STORED (rounded) average in
 * exact integer arithmetic, so the reference's 2-decimal drift is kept (Q-RA3) and
 * concurrent first votes cannot collide (D10). Same formula as rate_next_avg_cents. */
static const char rate_sql[] =
    "INSERT INTO ratings (sku, avg_rating, rating_count) VALUES (?, ?, 1) "
    "ON DUPLICATE KEY UPDATE "
    "avg_rating = ((2 * (CAST(ROUND(avg_rating * 100) AS SIGNED) * rating_count + 100 * ?)"
    " + rating_count + 1) DIV (2 * (rating_count + 1))) / 100, "
    "rating_count = rating_count + 1";

static const struct shop_err_reply db_error = {.down = DB_DOWN_TEXT, .failed = "database error"};

/* ANY /_health: the reference's SELECT 1 + 1; 503 with false while MySQL is down (D8). */
void ratings_health(struct shop_req *req)
{
    struct shop_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT 1 + 1 AS two FROM DUAL", NULL, 0, &rows, &err) == 0) {
        json_decref(rows);
        shop_reply_json(req, 200, json_pack("{s:b}", "pdo_connectivity", 1));
        return;
    }
    shop_log_warnx("rid=%s health query failed: %s", shop_req_id(req), err.msg);
    shop_reply_json(req, shop_err_unavailable(&err) ? 503 : 400,
                    json_pack("{s:b}", "pdo_connectivity", 0));
}

void route_fetch(struct shop_req *req)
{
    struct shop_mysql_param p[] = {SHOP_MYSQL_STR(shop_req_param(req, "sku"))};
    struct shop_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT avg_rating, rating_count FROM ratings WHERE sku = ?", p, 1, &rows,
                         &err) == -1) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    json_t *row = json_array_get(rows, 0);
    if (row)
        shop_reply_json(req, 200, json_incref(row));
    else
        shop_reply_json(req, 200, json_pack("{s:i,s:i}", "avg_rating", 0, "rating_count", 0));
    json_decref(rows);
}

/* GET CATALOGUE_URL/product/{sku}. Returns 0 when the SKU exists; otherwise replies 500
 * (the reference's answer to both a missing SKU and an unreachable catalogue, Q-RA1). */
static int check_sku(struct shop_req *req, const char *sku)
{
    struct shop_http_result res;
    shop_http_result_init(&res, CATALOGUE_BODY_MAX);
    int rc = shop_http_call_peer(&(struct shop_peer_call){.method = "GET",
                                                          .base = ratings_cfg.catalogue_base,
                                                          .verb = "product",
                                                          .id = sku,
                                                          .timeout_ms = CATALOGUE_TIMEOUT_MS,
                                                          .request_id = shop_req_id(req)},
                                 &res);
    if (rc == -1 || res.body.len == 0) {
        if (rc == 0)
            shop_log_warnx("rid=%s catalogue answered an empty body", shop_req_id(req));
        shop_reply_text(req, 500, "Failed to connect to catalogue");
        rc = -1;
    } else if (res.status != 200) {
        struct shop_buf msg;
        shop_buf_init(&msg, 512);
        shop_buf_printf(&msg, "%s not found", sku);
        shop_reply_text(req, 500, msg.data);
        shop_buf_cleanup(&msg);
        rc = -1;
    }
    shop_http_result_cleanup(&res);
    return rc;
}

void route_rate(struct shop_req *req)
{
    const char *sku = shop_req_param(req, "sku");
    long long raw;
    if (rate_parse_score(shop_req_param(req, "score"), &raw) == -1) {
        /* the reference's TypeError: 500, as docs/api/ratings.yaml says (D1: same status codes) */
        shop_reply_text(req, 500, "score must be an integer");
        return;
    }
    int score = rate_clamp(raw);
    if (check_sku(req, sku) == -1)
        return;
    struct shop_mysql_param p[] = {SHOP_MYSQL_STR(sku), SHOP_MYSQL_INT(score),
                                   SHOP_MYSQL_INT(score)};
    struct shop_err err;
    int rc = -1;
    for (int i = 0; i < RATE_ATTEMPTS && rc == -1; i++) {
        rc = shop_mysql_exec(rate_sql, p, 3, NULL, &err);
        /* InnoDB may pick a concurrent upsert as a deadlock victim; it was rolled back */
        if (rc == -1 && err.kind != SHOP_ERR_REJECTED)
            break;
    }
    if (rc == -1) {
        shop_reply_err(
            req, &err,
            &(struct shop_err_reply){.down = DB_DOWN_TEXT, .failed = "Unable to update rating"});
        return;
    }
    shop_reply_json(req, 200, json_pack("{s:b}", "success", 1));
}

/* The reference's /_health route has no method restriction (ANY). */
