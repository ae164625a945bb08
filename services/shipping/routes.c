/* routes.c - the shipping service's handlers: countries and cities from the in-memory index
 * (index.h; MySQL until it is loaded, and for /count and /cities), the distance/cost
 * calculator, quotes (quote.h) and /confirm forwarding a quoted cost to cart, the /memory demo
 * knob and the Spring-style health and actuator endpoints with Spring-shaped errors. */
#include "services/shipping/routes.h"
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/memo.h"
#include "libshop/mysql.h"
#include "libshop/util.h"
#include "services/shipping/calc.h"
#include "services/shipping/quote.h"
#include "services/shipping/reload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct shipping_config shipping_cfg;

#define DB_DOWN_TEXT    "MySQL database cities not available"
#define CART_TIMEOUT_MS 5000
#define CART_BODY_MAX   (4 * 1024 * 1024)
#define MEMORY_BLOCK    (25u * 1024 * 1024)
#define CITY_COLUMNS    "uuid, country_code AS code, city, name, region, latitude, longitude"
#define CODES_CACHE_MS  1000

enum { CONFIRM_INDEX_WAIT_MS = 15000 };
/* ---- Spring-shaped error bodies -------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 406:
        return "Not Acceptable";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Internal Server Error";
    }
}

/* The request path as a JSON string: as received when it is UTF-8, else with every byte
 * above 0x7F percent-encoded (jansson refuses invalid UTF-8). New reference. */
static json_t *path_json(const char *path)
{
    json_t *s = json_string(path);
    if (s)
        return s;
    struct shop_buf b;
    shop_buf_init(&b, 3 * strlen(path) + 1);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p < 0x80)
            shop_buf_putc(&b, (char)*p);
        else
            shop_buf_printf(&b, "%%%02X", *p);
    }
    s = json_stringn(b.data ? b.data : "", b.len);
    shop_buf_cleanup(&b);
    return s;
}

/* Replies the Spring Boot error JSON {"timestamp","status","error","message":"","path"}. */
static void spring_error(struct shop_req *req, int status)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_int_t ms = (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    shop_reply_json(req, status,
                    json_pack("{s:I,s:i,s:s,s:s,s:o}", "timestamp", ms, "status", status, "error",
                              reason(status), "message", "", "path",
                              path_json(shop_req_path(req))));
}

/* 503 when MySQL is unreachable (D16), else 500, in Spring's shape. */
static const struct shop_err_reply db_error = {.custom = spring_error};

/* ---- health ---------------------------------------------------------------------------------- */

/* A Java String answer (/health, /count): its Content-Type follows Accept (D23). */
static void reply_string(struct shop_req *req, int status, const char *text)
{
    shop_reply(req, status, calc_text_type(shop_req_header(req, "Accept")), text, strlen(text));
}

void shipping_health(struct shop_req *req)
{
    if (shop_mysql_ping(NULL))
        reply_string(req, 200, "OK");
    else
        reply_string(req, 503, DB_DOWN_TEXT);
}

void route_actuator_health(struct shop_req *req)
{
    bool up = shop_mysql_ping(NULL);
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s}", "status", up ? "UP" : "DOWN"));
}

void route_actuator_info(struct shop_req *req)
{
    shop_reply_json(req, 200, json_object());
}

static json_t *actuator_link(const char *base, const char *path)
{
    char href[600];
    snprintf(href, sizeof(href), "%s%s", base, path);
    return json_pack("{s:s,s:b}", "href", href, "templated", 0);
}

/* Spring's actuator discovery page: links to the exposed endpoints. */
void route_actuator(struct shop_req *req)
{
    const char *host = shop_req_header(req, "Host");
    char base[400];
    snprintf(base, sizeof(base), "http://%s/actuator",
             host && strlen(host) < 300 ? host : "localhost");
    json_t *links = json_object();
    json_object_set_new(links, "self", actuator_link(base, ""));
    json_object_set_new(links, "health", actuator_link(base, "/health"));
    json_object_set_new(links, "health-path", actuator_link(base, "/health/{*path}"));
    json_object_set_new(links, "info", actuator_link(base, "/info"));
    json_object_set_new(json_object_get(links, "health-path"), "templated", json_true());
    shop_reply_json(req, 200, json_pack("{s:o}", "_links", links));
}

/* ---- data routes ------------------------------------------------------------------------------
 */

void route_count(struct shop_req *req)
{
    struct shop_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT COUNT(*) AS n FROM cities", NULL, 0, &rows, &err) == -1) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    char text[32];
    snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(json_array_get(rows, 0), "n")));
    json_decref(rows);
    reply_string(req, 200, text);
}

/* The /codes body, the same for every request and read-mostly: kept serialised for
 * CODES_CACHE_MS. One request at a time reads it again when it expires; the others answer the
 * kept body meanwhile, for at most another CODES_CACHE_MS (then they wait for that read), so it
 * is never more than twice that stale. A failed read is never kept. */
static struct shop_memo codes_memo;

static void *codes_load(void *ud, struct shop_err *err)
{
    (void)ud;
    json_t *rows;
    if (shop_mysql_query("SELECT uuid, code, name FROM codes ORDER BY name, uuid", NULL, 0, &rows,
                         err) == -1)
        return NULL;
    struct shop_buf *out = shop_reply_scratch();
    int dumped = shop_json_dump(rows, SHIPPING_JSON_FLAGS, out);
    json_decref(rows);
    if (dumped == -1) {
        shop_err_set(err, SHOP_ERR_FAILED, 0, "response too large");
        return NULL;
    }
    return shop_memo_bytes_new(out->data, out->len);
}

void route_codes(struct shop_req *req)
{
    struct ship_index *ix = shipping_index_get();
    if (ix) {
        if (!shop_reply_etag(req, ix->codes->etag)) /* else a 304 went out */
            shop_reply_json_text(req, 200, ix->codes->data, ix->codes->len);
        ship_index_drop(ix);
        return;
    }
    struct shop_err err;
    struct shop_memo_bytes *body = shop_memo_get(&codes_memo, &err);
    if (!body) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    if (!shop_reply_etag(req, body->etag)) /* else a 304 went out */
        shop_reply_json_text(req, 200, body->data, body->len);
    shop_memo_bytes_drop(body);
}

void route_cities(struct shop_req *req)
{
    struct shop_mysql_param p[] = {SHOP_MYSQL_STR(shop_req_param(req, "code"))};
    struct shop_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT " CITY_COLUMNS " FROM cities WHERE country_code = ? ORDER BY uuid",
                         p, 1, &rows, &err) == -1)
        shop_reply_err(req, &err, &db_error);
    else
        shop_reply_json(req, 200, rows);
}

/* /match from the database: today's SQL (before the index is loaded, and for a code parameter
 * the index leaves to it). */
static void match_sql(struct shop_req *req, const char *pattern)
{
    struct shop_mysql_param p[] = {SHOP_MYSQL_STR(shop_req_param(req, "code")),
                                   SHOP_MYSQL_STR(pattern)};
    struct shop_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT " CITY_COLUMNS " FROM cities WHERE country_code = ?"
                         " AND city LIKE ? ESCAPE '!' ORDER BY uuid LIMIT 11",
                         p, 2, &rows, &err) == -1) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    size_t keep = calc_match_keep(json_array_size(rows));
    while (json_array_size(rows) > keep)
        json_array_remove(rows, json_array_size(rows) - 1);
    shop_reply_json(req, 200, rows);
}

void route_match(struct shop_req *req)
{
    const char *text = shop_req_param(req, "text");
    char pattern[1024];
    if (calc_utf16_len(text) < 3 || calc_like_prefix(text, pattern, sizeof(pattern)) == -1) {
        spring_error(req, 400);
        return;
    }
    struct ship_index *ix = shipping_index_get();
    int rc = SHIP_INDEX_ASK_SQL;
    if (ix) {
        struct shop_buf *out = shop_reply_scratch();
        rc = ship_index_match(ix, shop_req_param(req, "code"), text, out);
        if (rc == 0)
            shop_reply_scratch_json(req, 200);
        else if (rc == -1)
            spring_error(req, 500);
        ship_index_drop(ix);
    }
    if (rc == SHIP_INDEX_ASK_SQL)
        match_sql(req, pattern);
}

/* The city's distance from the database (before the index is loaded): 0, 1 when there is no
 * such city, or -1 when the answer (an error) went out. */
static int calc_sql(struct shop_req *req, long long id, long *km)
{
    struct shop_mysql_param p[] = {SHOP_MYSQL_INT(id)};
    struct shop_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT latitude, longitude FROM cities WHERE uuid = ?", p, 1, &rows,
                         &err) == -1) {
        shop_reply_err(req, &err, &db_error);
        return -1;
    }
    json_t *city = json_array_get(rows, 0);
    if (city)
        *km = calc_distance(json_number_value(json_object_get(city, "latitude")),
                            json_number_value(json_object_get(city, "longitude")));
    json_decref(rows);
    return city ? 0 : 1;
}

static bool over_https(struct shop_req *req)
{
    const char *proto = shop_req_header(req, "X-Forwarded-Proto");
    return proto && strcasecmp(proto, "https") == 0;
}

/* Adds the city to the client's quote cookie (D19): the only costs /confirm takes. */
static void add_quote(struct shop_req *req, long long id)
{
    struct quote_set q;
    long long now = (long long)time(NULL);
    quote_parse(shop_req_header(req, "Cookie"), now, &q);
    quote_add(&q, id);
    char cookie[QUOTE_COOKIE_SIZE];
    if (quote_cookie(&q, now, over_https(req), cookie, sizeof(cookie)) == 0)
        shop_reply_add_header(req, "Set-Cookie", cookie);
}

void route_calc(struct shop_req *req)
{
    long long id;
    if (calc_parse_id(shop_req_param(req, "id"), &id) == -1) {
        spring_error(req, 400);
        return;
    }
    long km = 0;
    int found;
    struct ship_index *ix = shipping_index_get();
    if (ix) {
        const struct ship_city *c = ship_index_city(ix, id);
        found = c ? 0 : 1;
        km = c ? c->km : 0;
        ship_index_drop(ix);
    } else {
        found = calc_sql(req, id, &km);
    }
    if (found == 1)
        spring_error(req, 404);
    if (found != 0)
        return;
    add_quote(req, id);
    char cost[40];
    shop_fmt_double(calc_cost(km), SHOP_NUM_JAVA, cost, sizeof(cost));
    struct shop_buf *out = shop_reply_scratch();
    shop_buf_printf(out, "{\"distance\":%ld,\"cost\":%s}", km, cost);
    shop_reply_scratch_json(req, 200);
}

/* ---- /confirm ------------------------------------------------------------------------------- */

/* Sends a shipping line (stolen) to cart's POST /shipping/{id}: cart 200 -> its body, else 404
 * (Q-SH7: cart's 400 or 404, a transport error). */
static void forward_to_cart(struct shop_req *req, json_t *line)
{
    char *text = shop_json_dumps(line, SHIPPING_JSON_FLAGS);
    json_decref(line);
    if (!text) {
        spring_error(req, 500);
        return;
    }
    struct shop_http_result res;
    shop_http_result_init(&res, CART_BODY_MAX);
    int rc = shop_http_call_peer(&(struct shop_peer_call){.method = "POST",
                                                          .base = shipping_cfg.cart_base,
                                                          .verb = "shipping",
                                                          .id = shop_req_param(req, "id"),
                                                          .body = text,
                                                          .body_len = strlen(text),
                                                          .timeout_ms = CART_TIMEOUT_MS,
                                                          .request_id = shop_req_id(req)},
                                 &res);
    free(text);
    if (rc == 0 && res.status == 200)
        shop_reply_json_text(req, 200, res.body.data, res.body.len);
    else
        spring_error(req, 404);
    shop_http_result_cleanup(&res);
}

/* Whether the body's distance, cost and "<country> <city>" location are those of a city at km
 * whose display name is name and whose country is country (NULL: none known). */
static bool line_is_city(json_t *body, long km, const char *country, const char *name)
{
    const char *location = json_string_value(json_object_get(body, "location"));
    if (!country || !name || json_number_value(json_object_get(body, "distance")) != (double)km ||
        json_number_value(json_object_get(body, "cost")) != calc_cost(km))
        return false;
    size_t n = strlen(country);
    return strncmp(location, country, n) == 0 && location[n] == ' ' &&
           strcmp(location + n + 1, name) == 0;
}

/* line_is_city for city id read from the database (no index: SHIPPING_INDEX_CHECK_S=0, or the
 * first load failed); its country is the codes row the index would link (the first in /codes
 * order whose code equals it). 1 or 0, or -1 with err on a database error. */
static int line_is_city_sql(json_t *body, long long id, struct shop_err *err)
{
    struct shop_mysql_param p[] = {SHOP_MYSQL_INT(id)};
    json_t *rows;
    if (shop_mysql_query(
            "SELECT c.latitude, c.longitude, c.name, (SELECT k.name FROM codes k"
            " WHERE k.code = c.country_code ORDER BY k.name, k.uuid LIMIT 1) AS country"
            " FROM cities c WHERE c.uuid = ?",
            p, 1, &rows, err) == -1)
        return -1;
    json_t *c = json_array_get(rows, 0);
    int rc = c && line_is_city(body,
                               calc_distance(json_number_value(json_object_get(c, "latitude")),
                                             json_number_value(json_object_get(c, "longitude"))),
                               json_string_value(json_object_get(c, "country")),
                               json_string_value(json_object_get(c, "name")));
    json_decref(rows);
    return rc;
}

/* The line /confirm forwards: the quoted city's cost, in *line, when the body's distance, cost
 * and location are those of a city quoted to this client (D19), checked against the index, or
 * the database when ix is NULL. 1 with *line, 0 when not quoted, -1 with err. */
static int quoted_line(struct shop_req *req, const struct ship_index *ix, json_t *body,
                       json_t **line, struct shop_err *err)
{
    struct quote_set q;
    if (!quote_parse(shop_req_header(req, "Cookie"), (long long)time(NULL), &q))
        return 0;
    for (size_t i = 0; i < q.n; i++) {
        const struct ship_city *c = ix ? ship_index_city(ix, q.ids[i]) : NULL;
        int rc = ix ? c && line_is_city(body, c->km, c->country_name, c->name)
                    : line_is_city_sql(body, q.ids[i], err);
        if (rc == -1)
            return -1;
        if (rc == 1) { /* the body's figures are the city's: checked equal */
            long km = (long)json_number_value(json_object_get(body, "distance"));
            *line = json_pack("{s:I,s:f,s:O}", "distance", (json_int_t)km, "cost", calc_cost(km),
                              "location", json_object_get(body, "location"));
            return 1;
        }
    }
    return 0;
}

/* Checks the body against the client's quotes, then sends the quoted line to cart's POST
 * /shipping/{id}: cart 200 -> its body, else 404 (Q-SH7). A body cart would refuse (not JSON,
 * a missing or mistyped field) is still that 404; a well-formed line with a cost or a
 * location this service did not quote to this client is 403 and reaches no cart. */
void route_confirm(struct shop_req *req)
{
    if (!shop_ctype_is(shop_req_header(req, "Content-Type"), "application/json")) {
        spring_error(req, 415);
        return;
    }
    if (!shop_req_accepts(req, "application/json")) { /* it produces JSON only */
        spring_error(req, 406);
        return;
    }
    size_t len;
    shop_req_body(req, &len);
    if (len == 0) {
        spring_error(req, 400);
        return;
    }
    json_t *body = shop_req_body_object(req);
    if (!json_is_object(body) || !json_is_number(json_object_get(body, "distance")) ||
        !json_is_number(json_object_get(body, "cost")) ||
        !json_is_string(json_object_get(body, "location"))) {
        json_decref(body);
        spring_error(req, 404); /* what cart's 400 for it became in the reference */
        return;
    }
    /* a quote is checked against the index: a confirm that comes while the first load runs (the
     * seconds after a start or a redeploy) waits for it; without an index (turned off, or the
     * database was down all that time) against the database */
    struct ship_index *ix = shipping_index_wait(CONFIRM_INDEX_WAIT_MS);
    json_t *line = NULL;
    struct shop_err err;
    int rc = quoted_line(req, ix, body, &line, &err);
    ship_index_drop(ix);
    json_decref(body);
    if (rc == -1) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    if (rc == 0) {
        shop_log_warnx("rid=%s /confirm refused: not a quoted cost", shop_req_id(req));
        spring_error(req, 403);
        return;
    }
    forward_to_cart(req, line);
}

/* ---- /memory and /free (D14) -------------------------------------------------------------- */

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static char **mem_blocks;
static size_t mem_count;

void route_memory(struct shop_req *req)
{
    pthread_mutex_lock(&mem_lock);
    if ((long)((mem_count + 1) * 25) > shipping_cfg.memory_max_mb) {
        size_t held = mem_count;
        pthread_mutex_unlock(&mem_lock);
        shop_log_warnx("rid=%s /memory refused: %zu blocks held, SHIPPING_MEMORY_MAX_MB=%ld",
                       shop_req_id(req), held, shipping_cfg.memory_max_mb);
        spring_error(req, 507);
        return;
    }
    char *block = shop_xmalloc(MEMORY_BLOCK);
    memset(block, 0xA5, MEMORY_BLOCK); /* touch every page so the memory is really used */
    mem_blocks = shop_xrealloc(mem_blocks, (mem_count + 1) * sizeof(*mem_blocks));
    mem_blocks[mem_count++] = block;
    size_t n = mem_count;
    pthread_mutex_unlock(&mem_lock);
    shop_reply_json(req, 200, json_integer((json_int_t)n));
}

static void free_blocks(void)
{
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < mem_count; i++)
        free(mem_blocks[i]);
    free(mem_blocks);
    mem_blocks = NULL;
    mem_count = 0;
    pthread_mutex_unlock(&mem_lock);
}

void route_free_memory(struct shop_req *req)
{
    free_blocks();
    shop_reply_json(req, 200, json_integer(0));
}

/* ---- set-up --------------------------------------------------------------------------------- */

void shipping_routes_init(void)
{
    shop_memo_init(&codes_memo, &(struct shop_memo_conf){.ttl_ms = CODES_CACHE_MS,
                                                         .stale_ms = CODES_CACHE_MS,
                                                         .load = codes_load,
                                                         .hold = shop_memo_bytes_hold,
                                                         .drop = shop_memo_bytes_drop});
}

void shipping_routes_cleanup(void)
{
    free_blocks();
    shop_memo_cleanup(&codes_memo);
}
