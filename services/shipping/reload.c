/* reload.c - loads shipping's in-memory index from MariaDB (through libshop) and keeps it
 * current: a signature check every SHIPPING_INDEX_CHECK_S seconds and on SIGHUP (see reload.h). */
#include "services/shipping/reload.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/mysql.h"
#include "libshop/util.h"
#include "services/shipping/routes.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_S     2 /* between attempts while no index could be loaded yet */
#define FOLD_BATCH  8 /* alphabet characters per fold query (each scans the BMP once) */
#define SQL_MAX     4096
#define CITY_SELECT "SELECT uuid, country_code AS code, city, name, region, latitude, longitude"

/* Row counts, a CRC of every row and the columns' collations: changes when the data does. */
static const char signature_sql[] =
    "SELECT CONCAT_WS(',', (SELECT COUNT(*) FROM cities),"
    " (SELECT BIT_XOR(CRC32(CONCAT_WS('|', uuid, country_code, city, name, region, latitude,"
    " longitude))) FROM cities), (SELECT COUNT(*) FROM codes),"
    " (SELECT BIT_XOR(CRC32(CONCAT_WS('|', uuid, code, name))) FROM codes),"
    " (SELECT GROUP_CONCAT(COLLATION_NAME ORDER BY COLUMN_NAME) FROM information_schema.COLUMNS"
    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cities'"
    " AND COLUMN_NAME IN ('city', 'country_code'))) AS sig";

/* 0..65535 as a derived table that MariaDB and MySQL 8 both accept (no sequence engine). */
#define HEX_DIGITS                                                                                 \
    "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"      \
    " UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL"       \
    " SELECT 9 UNION ALL SELECT 10 UNION ALL SELECT 11 UNION ALL SELECT 12 UNION ALL SELECT 13"    \
    " UNION ALL SELECT 14 UNION ALL SELECT 15)"
#define BMP                                                                                        \
    "(SELECT a.d * 4096 + b.d * 256 + c.d * 16 + e.d AS cp FROM " HEX_DIGITS " a, " HEX_DIGITS     \
    " b, " HEX_DIGITS " c, " HEX_DIGITS " e) s"

static struct shop_counter loads_total =
    SHOP_COUNTER_INIT("shipping_index_loads_total",
                      "In-memory indexes of the cities and codes tables built", SHOP_NUM_JAVA);

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cur_set = PTHREAD_COND_INITIALIZER; /* broadcast when an index is set */
static struct ship_index *cur;
static pthread_t thread;
static bool started;
static atomic_bool stopping;
static long period_s;

struct ship_index *shipping_index_get(void)
{
    pthread_mutex_lock(&cur_lock);
    struct ship_index *ix = cur;
    if (ix)
        ship_index_hold(ix);
    pthread_mutex_unlock(&cur_lock);
    return ix;
}

struct ship_index *shipping_index_wait(long ms)
{
    struct timespec until = shop_deadline(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&cur_lock);
    while (!cur && started && !atomic_load(&stopping))
        if (pthread_cond_timedwait(&cur_set, &cur_lock, &until) != 0)
            break; /* timed out: the database is down, or slow */
    struct ship_index *ix = cur;
    if (ix)
        ship_index_hold(ix);
    pthread_mutex_unlock(&cur_lock);
    return ix;
}

static void set_current(struct ship_index *ix)
{
    pthread_mutex_lock(&cur_lock);
    struct ship_index *old = cur;
    cur = ix;
    pthread_cond_broadcast(&cur_set);
    pthread_mutex_unlock(&cur_lock);
    ship_index_drop(old);
}

static int read_signature(char *sig, size_t len, struct shop_err *err)
{
    json_t *rows;
    if (shop_mysql_query(signature_sql, NULL, 0, &rows, err) == -1)
        return -1;
    const char *s = json_string_value(json_object_get(json_array_get(rows, 0), "sig"));
    snprintf(sig, len, "%s", s ? s : "");
    json_decref(rows);
    return 0;
}

/* The collation of cities.city, which must also be country_code's, as an identifier. */
static int read_collation(char *out, size_t len, struct shop_err *err)
{
    json_t *rows;
    if (shop_mysql_query("SELECT DISTINCT COLLATION_NAME AS c FROM information_schema.COLUMNS"
                         " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cities'"
                         " AND COLUMN_NAME IN ('city', 'country_code')",
                         NULL, 0, &rows, err) == -1)
        return -1;
    const char *c = json_string_value(json_object_get(json_array_get(rows, 0), "c"));
    int rc = json_array_size(rows) == 1 && c && strlen(c) < len &&
                     strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(c)
                 ? 0
                 : -1;
    if (rc == 0)
        snprintf(out, len, "%s", c);
    else
        shop_err_set(err, SHOP_ERR_FAILED, 0, "city and country_code need one plain collation");
    json_decref(rows);
    return rc;
}

/* Every (BMP code point, alphabet index) pair that LIKEs as one character under coll. */
static json_t *read_fold(const char *coll, const uint32_t *alphabet, size_t n, struct shop_err *err)
{
    json_t *all = json_array();
    for (size_t first = 0; first < n; first += FOLD_BATCH) {
        char sql[SQL_MAX];
        int len = snprintf(sql, sizeof(sql), "SELECT s.cp AS cp, r.rep AS rep FROM " BMP " JOIN (");
        for (size_t i = first; i < n && i < first + FOLD_BATCH; i++)
            len += snprintf(sql + len, sizeof(sql) - (size_t)len, "%sSELECT %zu AS rep, %u AS cp",
                            i > first ? " UNION ALL " : "", i, (unsigned)alphabet[i]);
        len += snprintf(sql + len, sizeof(sql) - (size_t)len,
                        ") r ON s.cp NOT BETWEEN 55296 AND 57343 AND CONVERT(CHAR(s.cp USING utf32)"
                        " USING utf8mb4) COLLATE %s LIKE CONCAT('!', CONVERT(CHAR(r.cp USING"
                        " utf32) USING utf8mb4)) ESCAPE '!'",
                        coll);
        json_t *rows;
        if (len >= (int)sizeof(sql)) {
            shop_err_set(err, SHOP_ERR_FAILED, 0, "fold query too long");
            json_decref(all);
            return NULL;
        }
        if (shop_mysql_query(sql, NULL, 0, &rows, err) == -1) {
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, rows);
        json_decref(rows);
    }
    return all;
}

/* Reads both tables and the collation's classes and builds an index (NULL on failure, logged). */
static struct ship_index *load(const char *sig, uint32_t **alpha_keep, size_t *nalpha_keep,
                               json_t **fold_keep, char *coll_keep, size_t coll_len)
{
    struct shop_err err;
    json_t *codes = NULL, *cities = NULL, *fold = NULL;
    struct ship_index *ix = NULL;
    char coll[64], why[160] = "";
    if (read_collation(coll, sizeof(coll), &err) == -1 ||
        shop_mysql_query("SELECT uuid, code, name FROM codes ORDER BY name, uuid", NULL, 0, &codes,
                         &err) == -1 ||
        shop_mysql_query(CITY_SELECT " FROM cities ORDER BY uuid", NULL, 0, &cities, &err) == -1) {
        shop_log_warnx("shipping index: cannot read the tables: %s", err.msg);
        goto out;
    }
    size_t nalpha;
    uint32_t *alpha = ship_index_alphabet((json_t *const[]){cities, cities, codes, NULL},
                                          (const char *const[]){"city", "code", "code"}, &nalpha);
    if (!alpha) {
        shop_log_warnx("shipping index: a value is not UTF-8");
        goto out;
    }
    /* the classes depend only on the alphabet and the collation: reuse the last ones */
    bool same = *fold_keep && nalpha == *nalpha_keep && strcmp(coll, coll_keep) == 0 &&
                memcmp(alpha, *alpha_keep, nalpha * sizeof(*alpha)) == 0;
    if (!same) {
        fold = read_fold(coll, alpha, nalpha, &err);
        if (!fold) {
            shop_log_warnx("shipping index: cannot read the collation's classes: %s", err.msg);
            free(alpha);
            goto out;
        }
        json_decref(*fold_keep);
        free(*alpha_keep);
        *fold_keep = fold;
        *alpha_keep = alpha;
        *nalpha_keep = nalpha;
        snprintf(coll_keep, coll_len, "%s", coll);
    } else {
        free(alpha);
    }
    ix = ship_index_build(codes, cities, *alpha_keep, *nalpha_keep, *fold_keep, SHIPPING_JSON_FLAGS,
                          why, sizeof(why));
    if (!ix)
        shop_log_warnx("shipping index: not built: %s", why);
    else
        snprintf(ix->signature, sizeof(ix->signature), "%s", sig);
out:
    json_decref(codes);
    json_decref(cities);
    return ix;
}

/* One check: reads the signature and loads when it changed (or force). Returns 0 when the
 * current index matches the tables, -1 otherwise. */
static int check(bool force, uint32_t **alpha, size_t *nalpha, json_t **fold, char *coll,
                 size_t coll_len)
{
    struct shop_err err;
    char sig[sizeof(((struct ship_index *)0)->signature)];
    if (read_signature(sig, sizeof(sig), &err) == -1)
        return -1; /* MariaDB away: keep serving what we have */
    struct ship_index *ix = shipping_index_get();
    bool same = ix && strcmp(ix->signature, sig) == 0;
    ship_index_drop(ix);
    if (same && !force)
        return 0;
    long long t0 = shop_now_ns();
    ix = load(sig, alpha, nalpha, fold, coll, coll_len);
    if (!ix)
        return -1;
    size_t ncities = ix->ncities, bytes = ix->bytes, nclasses = *nalpha;
    set_current(ix);
    shop_counter_add(&loads_total, 1);
    malloc_trim(0); /* the rows read for it are freed: give their pages back */
    shop_log_info("shipping index: %zu cities, %zu alphabet characters, %zu KiB, built in %lld ms"
                  " (signature %s)",
                  ncities, nclasses, bytes / 1024, (shop_now_ns() - t0) / 1000000, sig);
    return 0;
}

static void *reload_main(void *ud)
{
    (void)ud;
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    uint32_t *alpha = NULL;
    size_t nalpha = 0;
    json_t *fold = NULL;
    char coll[64] = "";
    bool force = false;
    while (!atomic_load(&stopping)) {
        int rc = check(force, &alpha, &nalpha, &fold, coll, sizeof(coll));
        force = false;
        struct ship_index *ix = shipping_index_get();
        long wait = rc == 0 && ix ? period_s : (period_s < RETRY_S ? period_s : RETRY_S);
        ship_index_drop(ix);
        struct timespec ts = {.tv_sec = wait};
        int sig = sigtimedwait(&hup, NULL, &ts);
        if (sig == SIGHUP && !atomic_load(&stopping)) {
            shop_log_info("shipping index: SIGHUP: reloading");
            force = true;
        }
    }
    free(alpha);
    json_decref(fold);
    return NULL;
}

void shipping_reload_block_signal(void)
{
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
}

void shipping_reload_start(long period)
{
    period_s = period;
    shop_counter_register(&loads_total);
    atomic_store(&stopping, false);
    if (pthread_create(&thread, NULL, reload_main, NULL) != 0)
        shop_fatalx("shipping index: cannot start the reload thread");
    started = true;
}

void shipping_reload_stop(void)
{
    if (started) {
        atomic_store(&stopping, true);
        pthread_kill(thread, SIGHUP);
        pthread_join(thread, NULL);
        started = false;
    }
    set_current(NULL);
}
