/* mysql.h - MySQL/MariaDB access on libmariadb (libmysqlclient API): one connection per worker
 * thread, prepared statements only, fail-fast reconnects, "unavailable" (503) vs "query
 * error" (500) classification (D16), a health probe, and rows delivered as JSON objects. */
#ifndef SHOP_MYSQL_H
#define SHOP_MYSQL_H

#include "libshop/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Where and how to connect. Strings are copied by shop_mysql_init. */
struct shop_mysql_conf {
    char host[256];
    int port;
    char user[128];
    char password[128];
    char db[128];
};

/* Overlays the course's variables on the defaults already in c: DB_HOST (may carry ":port"),
 * DB_PORT (wins over a port in DB_HOST), DB_USER, DB_PASSWORD|DB_PASS. A bad value is fatal
 * with one line naming the variable (D9). */
void shop_mysql_conf_env(struct shop_mysql_conf *c);

/* Overlays a PDO DSN "mysql:host=H;port=P;dbname=D;charset=utf8mb4" on c (parts that are
 * absent keep their value; unix_socket and charset are accepted and ignored). Returns 0, or -1
 * when dsn is not of that shape. */
int shop_mysql_parse_dsn(const char *dsn, struct shop_mysql_conf *c);

/* Sets up the library and remembers c. Does not connect: start-up never waits for the
 * database. Call once from the main thread before serving. */
void shop_mysql_init(const struct shop_mysql_conf *c);
/* Closes the calling thread's connection and ends the library. Call after the server (and
 * so every worker thread) has stopped. */
void shop_mysql_cleanup(void);

/* Calls report failures as a struct shop_err (err.h): UNAVAILABLE when the server cannot be
 * reached or went away (answer 503); REJECTED when the statement lost a lock (deadlock victim,
 * lock wait timeout: it was rolled back and may be retried); FAILED otherwise (answer 500). The
 * code is the client or server error number, 0 for libshop's own errors. */

enum shop_mysql_type { SHOP_MYSQL_NULL, SHOP_MYSQL_STR, SHOP_MYSQL_INT, SHOP_MYSQL_DOUBLE };

/* One statement parameter (a '?' in the SQL, in order). */
struct shop_mysql_param {
    enum shop_mysql_type type;
    const char *s;
    long long i;
    double d;
};

#define SHOP_MYSQL_STR(v)    ((struct shop_mysql_param){.type = SHOP_MYSQL_STR, .s = (v)})
#define SHOP_MYSQL_INT(v)    ((struct shop_mysql_param){.type = SHOP_MYSQL_INT, .i = (v)})
#define SHOP_MYSQL_DOUBLE(v) ((struct shop_mysql_param){.type = SHOP_MYSQL_DOUBLE, .d = (v)})

/* Largest result set a query may return (rows); more is a query error, never a realloc storm. */
#define SHOP_MYSQL_MAX_ROWS 200000

/* Runs a read-only statement and returns its rows in *rows: a new JSON array of objects keyed
 * by column label ("SELECT country_code AS code"). Integer columns become JSON integers,
 * DECIMAL/FLOAT/DOUBLE become reals, NULL becomes null, everything else strings. A lost
 * connection is re-established and the statement retried once. Returns 0, or -1 with err
 * filled (*rows = NULL). */
int shop_mysql_query(const char *sql, const struct shop_mysql_param *params, size_t nparams,
                     json_t **rows, struct shop_err *err);

/* Runs a statement without a result set (INSERT/UPDATE/DELETE); *affected (may be NULL)
 * receives the affected-row count. Retried on a new connection only when the old one failed
 * before the statement was sent (a write is never applied twice). Returns 0 or -1. */
int shop_mysql_exec(const char *sql, const struct shop_mysql_param *params, size_t nparams,
                    unsigned long long *affected, struct shop_err *err);

/* Health probe: true when the server answers on this thread's connection (connecting or
 * reconnecting as needed, failing fast while it is down). err may be NULL. */
bool shop_mysql_ping(struct shop_err *err);

/* true for client/server error numbers that mean "cannot reach the server" (exposed for
 * unit tests). */
bool shop_mysql_code_unavailable(unsigned code);

#endif
