/* shipping - the shipping service (docs/api/shipping.yaml): countries and cities from MySQL
 * `cities` (the /codes body kept for 1 s), the reference's distance/cost calculator, /confirm
 * forwarding to cart, the bounded /memory demo knob (D14) and Spring-style health and
 * actuator endpoints. */
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/mysql.h"
#include "libshop/util.h"
#include "services/shipping/calc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_DOWN_TEXT    "MySQL database cities not available"
#define CART_TIMEOUT_MS 5000
#define CART_BODY_MAX   (4 * 1024 * 1024)
#define MEMORY_BLOCK    (25u * 1024 * 1024)
#define CITY_COLUMNS    "uuid, country_code AS code, city, name, region, latitude, longitude"
#define JSON_FLAGS      SHOP_JSON_JAVA
#define CODES_CACHE_MS  1000

static char cart_base[512]; /* http://host:port, no trailing slash */
static long memory_max_mb;

/* ---- Spring-shaped error bodies -------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
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

/* 503 when MySQL is unreachable (D16), else 500; both logged. */
static void db_error(struct shop_req *req, const struct shop_mysql_err *err)
{
    shop_log_warnx("rid=%s query failed: %s", shop_req_id(req), err->msg);
    spring_error(req, err->unavailable ? 503 : 500);
}

/* ---- health ---------------------------------------------------------------------------------- */

/* A Java String answer (/health, /count): its Content-Type follows Accept (D23). */
static void reply_string(struct shop_req *req, int status, const char *text)
{
    shop_reply(req, status, calc_text_type(shop_req_header(req, "Accept")), text, strlen(text));
}

static void health(struct shop_req *req)
{
    if (shop_mysql_ping(NULL))
        reply_string(req, 200, "OK");
    else
        reply_string(req, 503, DB_DOWN_TEXT);
}

static void actuator_health(struct shop_req *req)
{
    bool up = shop_mysql_ping(NULL);
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s}", "status", up ? "UP" : "DOWN"));
}

static void actuator_info(struct shop_req *req)
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
static void actuator(struct shop_req *req)
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

static void count(struct shop_req *req)
{
    struct shop_mysql_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT COUNT(*) AS n FROM cities", NULL, 0, &rows, &err) == -1) {
        db_error(req, &err);
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
 * kept body meanwhile, for at most another CODES_CACHE_MS (then they read too), so it is never
 * more than twice that stale. A failed read is never kept. */
static struct {
    pthread_mutex_t lock;
    char *body; /* NULL until the first successful read */
    size_t len;
    char etag[SHOP_ETAG_SIZE]; /* body's tag, made once per read */
    long long read_ns;         /* when the query that produced it started */
    bool refreshing;           /* a request is reading it again */
} codes_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Appends the kept body to out (and its tag to etag) while it is fresh, or while another request
 * refreshes it: true. Otherwise false (out unchanged), and the caller must read the codes and
 * call codes_done. */
static bool codes_cached(struct shop_buf *out, char etag[SHOP_ETAG_SIZE])
{
    bool hit = false;
    pthread_mutex_lock(&codes_cache.lock);
    long long age_ms = (shop_now_ns() - codes_cache.read_ns) / 1000000LL;
    bool usable =
        age_ms < CODES_CACHE_MS || (codes_cache.refreshing && age_ms < 2 * CODES_CACHE_MS);
    if (codes_cache.body && usable) {
        hit = shop_buf_append(out, codes_cache.body, codes_cache.len) == 0;
        memcpy(etag, codes_cache.etag, SHOP_ETAG_SIZE);
    }
    if (!hit)
        codes_cache.refreshing = true;
    pthread_mutex_unlock(&codes_cache.lock);
    return hit;
}

/* Ends a read: keeps a copy of body (unless NULL) and its tag, read at read_ns, unless a later
 * read is kept. */
static void codes_done(const char *body, size_t len, const char *etag, long long read_ns)
{
    pthread_mutex_lock(&codes_cache.lock);
    if (body && (!codes_cache.body || read_ns > codes_cache.read_ns)) {
        free(codes_cache.body);
        codes_cache.body = shop_xmalloc(len);
        memcpy(codes_cache.body, body, len);
        codes_cache.len = len;
        memcpy(codes_cache.etag, etag, SHOP_ETAG_SIZE);
        codes_cache.read_ns = read_ns;
    }
    codes_cache.refreshing = false;
    pthread_mutex_unlock(&codes_cache.lock);
}

static void codes(struct shop_req *req)
{
    struct shop_buf *out = shop_reply_scratch();
    char etag[SHOP_ETAG_SIZE];
    if (!codes_cached(out, etag)) {
        long long read_ns = shop_now_ns();
        struct shop_mysql_err err;
        json_t *rows;
        if (shop_mysql_query("SELECT uuid, code, name FROM codes ORDER BY name, uuid", NULL, 0,
                             &rows, &err) == -1) {
            codes_done(NULL, 0, NULL, 0);
            db_error(req, &err);
            return;
        }
        int dumped = shop_json_dump(rows, JSON_FLAGS, out);
        json_decref(rows);
        if (dumped == 0)
            shop_etag_make(out->data, out->len, etag);
        codes_done(dumped == -1 ? NULL : out->data, out->len, etag, read_ns);
        if (dumped == -1) {
            shop_reply_text(req, 500, "response too large");
            return;
        }
    }
    if (!shop_reply_etag(req, etag)) /* else a 304 went out */
        shop_reply_scratch_json(req, 200);
}

static void cities(struct shop_req *req)
{
    struct shop_mysql_param p[] = {SHOP_MYSQL_STR(shop_req_param(req, "code"))};
    struct shop_mysql_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT " CITY_COLUMNS " FROM cities WHERE country_code = ? ORDER BY uuid",
                         p, 1, &rows, &err) == -1)
        db_error(req, &err);
    else
        shop_reply_json(req, 200, rows);
}

static void match(struct shop_req *req)
{
    const char *text = shop_req_param(req, "text");
    char pattern[1024];
    if (calc_utf16_len(text) < 3 || calc_like_prefix(text, pattern, sizeof(pattern)) == -1) {
        spring_error(req, 400);
        return;
    }
    struct shop_mysql_param p[] = {SHOP_MYSQL_STR(shop_req_param(req, "code")),
                                   SHOP_MYSQL_STR(pattern)};
    struct shop_mysql_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT " CITY_COLUMNS " FROM cities WHERE country_code = ?"
                         " AND city LIKE ? ESCAPE '!' ORDER BY uuid LIMIT 11",
                         p, 2, &rows, &err) == -1) {
        db_error(req, &err);
        return;
    }
    size_t keep = calc_match_keep(json_array_size(rows));
    while (json_array_size(rows) > keep)
        json_array_remove(rows, json_array_size(rows) - 1);
    shop_reply_json(req, 200, rows);
}

static void calc(struct shop_req *req)
{
    long long id;
    if (calc_parse_id(shop_req_param(req, "id"), &id) == -1) {
        spring_error(req, 400);
        return;
    }
    struct shop_mysql_param p[] = {SHOP_MYSQL_INT(id)};
    struct shop_mysql_err err;
    json_t *rows;
    if (shop_mysql_query("SELECT latitude, longitude FROM cities WHERE uuid = ?", p, 1, &rows,
                         &err) == -1) {
        db_error(req, &err);
        return;
    }
    json_t *city = json_array_get(rows, 0);
    if (!city) {
        json_decref(rows);
        spring_error(req, 404);
        return;
    }
    long km = calc_distance(json_number_value(json_object_get(city, "latitude")),
                            json_number_value(json_object_get(city, "longitude")));
    json_decref(rows);
    shop_reply_json(req, 200,
                    json_pack("{s:I,s:f}", "distance", (json_int_t)km, "cost", calc_cost(km)));
}

/* ---- /confirm ------------------------------------------------------------------------------- */

/* Forwards the raw body to cart's POST /shipping/{id}: cart 200 -> its body, else 404. */
static void confirm(struct shop_req *req)
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
    const char *body = shop_req_body(req, &len);
    if (len == 0) {
        spring_error(req, 400);
        return;
    }
    struct shop_http_result res;
    shop_http_result_init(&res, CART_BODY_MAX);
    int rc = shop_http_call_peer(&(struct shop_peer_call){.method = "POST",
                                                          .base = cart_base,
                                                          .verb = "shipping",
                                                          .id = shop_req_param(req, "id"),
                                                          .body = body,
                                                          .body_len = len,
                                                          .timeout_ms = CART_TIMEOUT_MS,
                                                          .request_id = shop_req_id(req)},
                                 &res);
    if (rc == 0 && res.status == 200)
        shop_reply_json_text(req, 200, res.body.data, res.body.len);
    else
        spring_error(req, 404);
    shop_http_result_cleanup(&res);
}

/* ---- /memory and /free (D14) -------------------------------------------------------------- */

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static char **mem_blocks;
static size_t mem_count;

static void memory(struct shop_req *req)
{
    pthread_mutex_lock(&mem_lock);
    if ((long)((mem_count + 1) * 25) > memory_max_mb) {
        size_t held = mem_count;
        pthread_mutex_unlock(&mem_lock);
        shop_log_warnx("rid=%s /memory refused: %zu blocks held, SHIPPING_MEMORY_MAX_MB=%ld",
                       shop_req_id(req), held, memory_max_mb);
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

static void free_memory(struct shop_req *req)
{
    free_blocks();
    shop_reply_json(req, 200, json_integer(0));
}

/* ---- start-up ------------------------------------------------------------------------------ */

static const struct shop_route routes[] = {
    {"GET", "/health", health},
    {"GET", "/count", count},
    {"GET", "/codes", codes},
    {"GET", "/cities/:code", cities},
    {"GET", "/match/:code/:text", match},
    {"GET", "/calc/:id", calc},
    {"POST", "/confirm/:id", confirm},
    {"GET", "/memory", memory},
    {"GET", "/free", free_memory},
    {"GET", "/actuator", actuator},
    {"GET", "/actuator/health", actuator_health},
    {"GET", "/actuator/info", actuator_info},
};

int main(int argc, char **argv)
{
    shop_service_init(argc, argv, "shipping");
    struct shop_server_conf conf = {
        .service = "shipping",
        .port = shop_conf_listen_port("SHIPPING_SERVER_PORT|SERVER_PORT", 8080),
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .text_type = "text/plain; charset=utf-8",
        .json_type = "application/json",
        .json_flags = JSON_FLAGS,
        .options_bare = true, /* Spring's OPTIONS: Allow, no body (D23) */
    };
    struct shop_mysql_conf db = {.host = "mysql",
                                 .port = 3306,
                                 .user = "shipping",
                                 .password = "RoboShop@1",
                                 .db = "cities"};
    shop_mysql_conf_env(&db);
    /* CART_ENDPOINT is host:port (the course's form); a full http:// URL is accepted too */
    shop_conf_base_url(cart_base, sizeof(cart_base), "CART_ENDPOINT", "cart:8080");
    memory_max_mb = shop_conf_long("SHIPPING_MEMORY_MAX_MB", 512, 0, 1024L * 1024);
    shop_mysql_init(&db);
    int rc = shop_server_run(&conf);
    free_blocks();
    free(codes_cache.body);
    shop_mysql_cleanup();
    return rc;
}
