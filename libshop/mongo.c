/* mongo.c - libmongoc client pool with fail-fast timeouts, the JSON-level calls of mongo.h,
 * and BSON/JSON conversion. The
 * pool's server monitor reports every heartbeat (APM callbacks): the health probe answers from
 * that state, so it never waits out the 1 s server selection while the server is down. */
#include "libshop/mongo_driver.h"
#include "libshop/castore.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

/* How long the first probe waits for the monitor's first heartbeat. */
#define FIRST_HEARTBEAT_WAIT_MS 500

static mongoc_client_pool_t *pool;
static char db_name[128];

/* The last heartbeat's outcome: 0 none yet, 1 the server answered, -1 it did not. */
static pthread_mutex_t hb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hb_cv = PTHREAD_COND_INITIALIZER;
static int hb_state;

static void hb_set(int state)
{
    pthread_mutex_lock(&hb_mu);
    hb_state = state;
    pthread_cond_broadcast(&hb_cv);
    pthread_mutex_unlock(&hb_mu);
}

static void on_heartbeat_ok(const mongoc_apm_server_heartbeat_succeeded_t *event)
{
    (void)event;
    hb_set(1);
}

static void on_heartbeat_failed(const mongoc_apm_server_heartbeat_failed_t *event)
{
    (void)event;
    hb_set(-1);
}

/* The monitor's view, waiting at most wait_ms for a first heartbeat: 1 up, -1 down, 0 unknown. */
static int hb_wait(long wait_ms)
{
    struct timespec until = shop_deadline(CLOCK_REALTIME, wait_ms);
    pthread_mutex_lock(&hb_mu);
    while (hb_state == 0 && pthread_cond_timedwait(&hb_cv, &hb_mu, &until) == 0)
        ;
    int state = hb_state;
    pthread_mutex_unlock(&hb_mu);
    return state;
}

static void mongo_log(mongoc_log_level_t level, const char *domain, const char *msg, void *ud)
{
    (void)ud;
    if (level <= MONGOC_LOG_LEVEL_WARNING && !strstr(msg, "endSessions"))
        shop_log_warnx("mongoc %s: %s", domain, msg);
    else
        shop_log_debug("mongoc %s: %s", domain, msg);
}

static void default_int(mongoc_uri_t *uri, const char *opt, int32_t v)
{
    const bson_t *opts = mongoc_uri_get_options(uri);
    if (!opts || !bson_has_field(opts, opt))
        mongoc_uri_set_option_as_int32(uri, opt, v);
}

/* TLS without tlsCAFile verifies the server with the host's CA store, wherever the host keeps it.
 */
static void default_ca_file(mongoc_uri_t *uri)
{
    const bson_t *opts = mongoc_uri_get_options(uri);
    const char *ca = shop_ca_file();
    if (mongoc_uri_get_tls(uri) && ca && !(opts && bson_has_field(opts, MONGOC_URI_TLSCAFILE)))
        mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, ca);
}

void shop_mongo_init(const char *url, const char *default_db)
{
    bson_error_t err;
    mongoc_init();
    mongoc_log_set_handler(mongo_log, NULL);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &err);
    if (!uri)
        shop_fatalx("config: MONGO_URL is not a MongoDB URL: %s", err.message);
    default_int(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 1000);
    default_int(uri, MONGOC_URI_CONNECTTIMEOUTMS, 1000);
    default_int(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
    default_int(uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 2000);
    default_ca_file(uri);
    const char *db = mongoc_uri_get_database(uri);
    snprintf(db_name, sizeof(db_name), "%s", db && *db ? db : default_db);
    pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (!pool)
        shop_fatalx("config: MONGO_URL cannot be used");
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(pool, "roboshop-c");
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    mongoc_apm_set_server_heartbeat_succeeded_cb(cbs, on_heartbeat_ok);
    mongoc_apm_set_server_heartbeat_failed_cb(cbs, on_heartbeat_failed);
    mongoc_client_pool_set_apm_callbacks(pool, cbs, NULL);
    mongoc_apm_callbacks_destroy(cbs);
    shop_log_info("mongo database=%s", db_name);
}

void shop_mongo_cleanup(void)
{
    if (pool)
        mongoc_client_pool_destroy(pool);
    pool = NULL;
    mongoc_cleanup();
}

mongoc_client_t *shop_mongo_pop(void)
{
    return mongoc_client_pool_pop(pool);
}

void shop_mongo_push(mongoc_client_t *client)
{
    if (client)
        mongoc_client_pool_push(pool, client);
}

mongoc_collection_t *shop_mongo_collection(mongoc_client_t *client, const char *name)
{
    return mongoc_client_get_collection(client, db_name, name);
}

/* Answers from the monitor's last heartbeat when there is one (a pooled client's first pop
 * starts the monitor); only before any heartbeat, a real ping. */
bool shop_mongo_ping(void)
{
    mongoc_client_t *c = shop_mongo_pop();
    int state = hb_wait(FIRST_HEARTBEAT_WAIT_MS);
    if (state != 0) {
        shop_mongo_push(c);
        return state > 0;
    }
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bson_error_t err;
    bool ok = mongoc_client_command_simple(c, "admin", &cmd, NULL, NULL, &err);
    bson_destroy(&cmd);
    shop_mongo_push(c);
    return ok;
}

bool shop_mongo_unavailable(const bson_error_t *err)
{
    return err->domain == MONGOC_ERROR_SERVER_SELECTION || err->domain == MONGOC_ERROR_STREAM ||
           err->domain == MONGOC_ERROR_CLIENT;
}

static json_t *value_to_json(bson_iter_t *it, int depth);

static json_t *doc_to_json(bson_iter_t *child, bool array, int depth)
{
    json_t *out = array ? json_array() : json_object();
    while (bson_iter_next(child)) {
        json_t *v = value_to_json(child, depth + 1);
        if (array)
            json_array_append_new(out, v);
        else
            json_object_set_new(out, bson_iter_key(child), v);
    }
    return out;
}

static json_t *value_to_json(bson_iter_t *it, int depth)
{
    bson_iter_t child;
    char hex[25];
    uint32_t len;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));
    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));
    case BSON_TYPE_UTF8: {
        const char *s = bson_iter_utf8(it, &len);
        json_t *j = json_stringn(s, len); /* bad UTF-8 kept as stored, as mysql.c does */
        return j ? j : json_stringn_nocheck(s, len);
    }
    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), hex);
        return json_string(hex);
    case BSON_TYPE_DATE_TIME:
        return json_integer(bson_iter_date_time(it));
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        if (depth > 32 || !bson_iter_recurse(it, &child))
            return json_null();
        return doc_to_json(&child, bson_iter_type(it) == BSON_TYPE_ARRAY, depth);
    default:
        return json_null();
    }
}

json_t *shop_bson_to_json(const bson_t *doc)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return json_object();
    return doc_to_json(&it, false, 0);
}

static int append_value(bson_t *out, const char *key, const json_t *v, int depth);

/* true when v is {"$oid": "<24 hex digits>"}; *oid is then the ObjectId. */
static bool json_oid(const json_t *v, bson_oid_t *oid)
{
    const char *hex = json_string_value(json_object_get(v, "$oid"));
    if (json_object_size(v) != 1 || !hex || strlen(hex) != 24 || !bson_oid_is_valid(hex, 24))
        return false;
    bson_oid_init_from_string(oid, hex);
    return true;
}

static int append_container(bson_t *out, const char *key, const json_t *v, int depth)
{
    bson_t child;
    bson_oid_t oid;
    int rc = 0;
    if (depth > 32)
        return -1;
    if (json_is_object(v) && json_oid(v, &oid)) {
        bson_append_oid(out, key, -1, &oid);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        bson_append_document_begin(out, key, -1, &child);
        json_t *src = shop_json_mut(v);
        json_object_foreach(src, k, m)
        {
            if (rc == 0)
                rc = append_value(&child, k, m, depth + 1);
        }
        bson_append_document_end(out, &child);
    } else {
        char idx[24];
        bson_append_array_begin(out, key, -1, &child);
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            snprintf(idx, sizeof(idx), "%zu", i);
            rc = append_value(&child, idx, json_array_get(v, i), depth + 1);
        }
        bson_append_array_end(out, &child);
    }
    return rc;
}

static int append_value(bson_t *out, const char *key, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        return append_container(out, key, v, depth);
    case JSON_STRING:
        bson_append_utf8(out, key, -1, json_string_value(v), (int)json_string_length(v));
        return 0;
    case JSON_INTEGER: {
        json_int_t n = json_integer_value(v);
        if (n >= INT32_MIN && n <= INT32_MAX)
            bson_append_int32(out, key, -1, (int32_t)n);
        else
            bson_append_int64(out, key, -1, n);
        return 0;
    }
    case JSON_REAL:
        bson_append_double(out, key, -1, json_real_value(v));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        bson_append_bool(out, key, -1, json_is_true(v));
        return 0;
    case JSON_NULL:
        bson_append_null(out, key, -1);
        return 0;
    }
    return -1;
}

int shop_json_to_bson(const json_t *obj, bson_t *out)
{
    const char *k;
    json_t *m;
    int rc = 0;
    json_t *src = shop_json_mut(obj);
    if (!json_is_object(src))
        return -1;
    json_object_foreach(src, k, m)
    {
        if (rc == 0)
            rc = append_value(out, k, m, 0);
    }
    return rc;
}

/* ---- JSON-level calls -------------------------------------------------------------------- */

#define DUP_KEY 11000

static int driver_err(const bson_error_t *e, struct shop_err *err)
{
    enum shop_err_kind kind = SHOP_ERR_FAILED;
    if (shop_mongo_unavailable(e))
        kind = SHOP_ERR_UNAVAILABLE;
    else if (e->code == DUP_KEY)
        kind = SHOP_ERR_REJECTED;
    shop_err_set(err, kind, (long)e->code, "%s", e->message);
    return -1;
}

/* Converts JSON (NULL = {}) into an initialised out. Returns 0, or -1 with err set REJECTED. */
static int to_bson(const json_t *v, bson_t *out, struct shop_err *err)
{
    bson_init(out);
    if (!v || shop_json_to_bson(v, out) == 0)
        return 0;
    shop_err_set(err, SHOP_ERR_REJECTED, 0, "the document cannot be stored as BSON");
    return -1;
}

/* A pooled client and one of its collections, for the length of one call, which is a client
 * span named after the operation and the collection (never the filter's values). */
struct use {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    struct shop_span span;
};

static void use_begin(struct use *u, const char *coll, const char *op)
{
    shop_span_begin(&u->span, SHOP_SPAN_CLIENT, NULL, "%s %s.%s", op, db_name, coll);
    shop_span_attr_str(&u->span, "db.system.name", "mongodb");
    shop_span_attr_str(&u->span, "db.namespace", db_name);
    shop_span_attr_str(&u->span, "db.collection.name", coll);
    shop_span_attr_str(&u->span, "db.operation.name", op);
    u->client = shop_mongo_pop();
    u->coll = shop_mongo_collection(u->client, coll);
}

/* fail: the error's description when the call failed, else NULL. */
static void use_end(struct use *u, const char *fail)
{
    mongoc_collection_destroy(u->coll);
    shop_mongo_push(u->client);
    if (fail)
        shop_span_fail(&u->span, fail);
    shop_span_end(&u->span);
}

int shop_mongo_find(const char *coll, const json_t *filter, const json_t *opts, json_t **docs,
                    struct shop_err *err)
{
    bson_t f, o;
    int rc = -1;
    *docs = NULL;
    if ((to_bson(filter, &f, err) | to_bson(opts, &o, err)) == 0) {
        struct use u;
        use_begin(&u, coll, "find");
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(u.coll, &f, &o, NULL);
        const bson_t *d;
        bson_error_t e;
        json_t *arr = json_array();
        while (mongoc_cursor_next(cur, &d))
            json_array_append_new(arr, shop_bson_to_json(d));
        if (mongoc_cursor_error(cur, &e)) {
            json_decref(arr);
            driver_err(&e, err);
        } else {
            *docs = arr;
            rc = 0;
        }
        mongoc_cursor_destroy(cur);
        use_end(&u, rc < 0 ? err->msg : NULL);
    }
    bson_destroy(&o);
    bson_destroy(&f);
    return rc;
}

int shop_mongo_find_one(const char *coll, const json_t *filter, json_t **doc, struct shop_err *err)
{
    json_t *opts = json_pack("{s:i}", "limit", 1), *docs;
    int rc = shop_mongo_find(coll, filter, opts, &docs, err);
    json_decref(opts);
    *doc = NULL;
    if (rc == -1)
        return -1;
    *doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return *doc ? 1 : 0;
}

int shop_mongo_insert(const char *coll, const json_t *doc, struct shop_err *err)
{
    bson_t d;
    int rc = -1;
    if (to_bson(doc, &d, err) == 0) {
        struct use u;
        use_begin(&u, coll, "insert");
        bson_error_t e;
        rc = mongoc_collection_insert_one(u.coll, &d, NULL, NULL, &e) ? 0 : driver_err(&e, err);
        use_end(&u, rc < 0 ? err->msg : NULL);
    }
    bson_destroy(&d);
    return rc;
}

int shop_mongo_update_one(const char *coll, const json_t *filter, const json_t *update,
                          struct shop_err *err)
{
    bson_t f, d, reply;
    int rc = -1;
    if ((to_bson(filter, &f, err) | to_bson(update, &d, err)) == 0) {
        struct use u;
        use_begin(&u, coll, "update");
        bson_error_t e;
        bson_iter_t it;
        if (!mongoc_collection_update_one(u.coll, &f, &d, NULL, &reply, &e))
            driver_err(&e, err);
        else if (bson_iter_init_find(&it, &reply, "modifiedCount") && BSON_ITER_HOLDS_INT(&it))
            rc = (int)bson_iter_as_int64(&it);
        else
            rc = 0;
        bson_destroy(&reply);
        use_end(&u, rc < 0 ? err->msg : NULL);
    }
    bson_destroy(&d);
    bson_destroy(&f);
    return rc;
}
