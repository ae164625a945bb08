/* sqlpoint.c - MariaDB's own ceiling for the shop's point selects: C connections, one thread
 * each, each running one prepared statement (the binary protocol the services use) over and
 * over for S seconds, every row fetched. No HTTP: what the database and its client library can
 * do on this machine, to set beside the routes that make one such query per request.
 *
 * usage: sqlpoint [-c CONNS] [-d SECONDS] DB USER PASS SQL [ARG...]   (DB_HOST, DB_PORT)
 * ARGs are bound as strings. prints {"queries":N,"seconds":S,"per_s":R,"errors":E,"conns":C}
 */
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 8

struct job {
    const char *db, *user, *pass, *sql;
    int nargs;
    char **args;
};

static atomic_long queries, errors;
static atomic_int ready;
static atomic_bool stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* One execute and fetch of every row; false on any error. */
static bool run_once(MYSQL_STMT *st)
{
    if (mysql_stmt_execute(st) != 0)
        return false;
    int rc;
    while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED)
        ;
    return rc == MYSQL_NO_DATA && mysql_stmt_free_result(st) == 0;
}

static MYSQL_STMT *prepare(MYSQL *m, const struct job *j, MYSQL_BIND *bind)
{
    MYSQL_STMT *st = mysql_stmt_init(m);
    if (!st || mysql_stmt_prepare(st, j->sql, strlen(j->sql)) != 0)
        return NULL;
    memset(bind, 0, sizeof(MYSQL_BIND) * MAX_ARGS);
    for (int i = 0; i < j->nargs; i++) {
        bind[i].buffer_type = MYSQL_TYPE_STRING;
        bind[i].buffer = j->args[i];
        bind[i].buffer_length = strlen(j->args[i]);
    }
    if (j->nargs && mysql_stmt_bind_param(st, bind) != 0)
        return NULL;
    return st;
}

static void *worker(void *arg)
{
    const struct job *j = arg;
    mysql_thread_init();
    MYSQL *m = mysql_init(NULL);
    MYSQL_BIND bind[MAX_ARGS];
    MYSQL_STMT *st = NULL;
    if (m && mysql_real_connect(m, env_or("DB_HOST", "127.0.0.1"), j->user, j->pass, j->db,
                                (unsigned)atoi(env_or("DB_PORT", "3306")), NULL, 0))
        st = prepare(m, j, bind);
    if (!st) {
        fprintf(stderr, "sqlpoint: %s\n", m ? mysql_error(m) : "out of memory");
        atomic_fetch_add(&errors, 1);
    }
    atomic_fetch_add(&ready, 1);
    while (st && !atomic_load(&stop)) {
        if (run_once(st))
            atomic_fetch_add(&queries, 1);
        else
            atomic_fetch_add(&errors, 1);
    }
    if (st)
        mysql_stmt_close(st);
    if (m)
        mysql_close(m);
    mysql_thread_end();
    return NULL;
}

int main(int argc, char **argv)
{
    int conns = 50, opt;
    double seconds = 2;
    while ((opt = getopt(argc, argv, "c:d:")) != -1) {
        if (opt == 'c')
            conns = atoi(optarg);
        else if (opt == 'd')
            seconds = atof(optarg);
        else
            break;
    }
    if (argc - optind < 4 || argc - optind - 4 > MAX_ARGS || conns < 1) {
        fprintf(stderr, "usage: sqlpoint [-c CONNS] [-d SECONDS] DB USER PASS SQL [ARG...]\n");
        return 2;
    }
    struct job j = {argv[optind],     argv[optind + 1],  argv[optind + 2],
                    argv[optind + 3], argc - optind - 4, argv + optind + 4};
    mysql_library_init(0, NULL, NULL);
    pthread_t *t = calloc((size_t)conns, sizeof(*t));
    if (!t)
        return 1;
    /* the clock starts once every connection is up and prepared */
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], NULL, worker, &j);
    while (atomic_load(&ready) < conns)
        usleep(1000);
    long before = atomic_load(&queries);
    double t0 = now_s();
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, true);
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    double secs = now_s() - t0;
    long n = atomic_load(&queries) - before;
    printf("{\"queries\":%ld,\"seconds\":%.3f,\"per_s\":%.1f,\"errors\":%ld,\"conns\":%d}\n", n,
           secs, n / secs, atomic_load(&errors), conns);
    free(t);
    mysql_library_end();
    return atomic_load(&errors) ? 1 : 0;
}
