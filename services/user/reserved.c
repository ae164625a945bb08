/* reserved.c - the anonymous namespace's users (D18, D26). Sessions on, no name starting with
 * "anonymous-" can be registered, so such an id is a user's only when the users collection held
 * one before (a lab-mode registration, a legacy database). One query tells whether any stored
 * name lies in that namespace; while none does, /check answers an anonymous id without a
 * MongoDB query of its own (the query of every anonymous pay). */
#include "services/user/reserved.h"
#include "libshop/log.h"
#include "libshop/mongo.h"
#include "libshop/util.h"
#include "services/user/session.h"

#include <pthread.h>

#define RECHECK_NS ((long long)RESERVED_RECHECK_S * 1000000000LL)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long long asked_ns; /* when MongoDB last answered; 0: never */
static bool none_stored;   /* its answer: no stored user has a reserved name */

/* Asks MongoDB whether a user's name lies in ["anonymous-", "anonymous.") (exactly the names
 * with that prefix: strings compare byte by byte, and '.' is the byte after '-'). 1 none, 0
 * some, -1 error. */
static int ask(void)
{
    json_t *filter = json_pack("{s:{s:s,s:s}}", "name", "$gte", "anonymous-", "$lt", "anonymous.");
    json_t *doc = NULL;
    struct shop_err err;
    int rc = filter ? shop_mongo_find_one("users", filter, &doc, &err) : -1;
    json_decref(filter);
    json_decref(doc);
    if (rc == 1)
        shop_log_warnx("a stored user has a name starting with anonymous-: /check asks MongoDB "
                       "for every anonymous id");
    return rc == -1 ? -1 : rc == 0;
}

bool reserved_name_unused(const char *name)
{
    if (!session_name_reserved(name))
        return false;
    long long now = shop_now_ns();
    pthread_mutex_lock(&lock);
    bool fresh = asked_ns && now - asked_ns < RECHECK_NS, none = none_stored;
    pthread_mutex_unlock(&lock);
    if (fresh)
        return none;
    int rc = ask();
    if (rc == -1)
        return false;
    pthread_mutex_lock(&lock);
    asked_ns = now;
    none_stored = rc == 1;
    pthread_mutex_unlock(&lock);
    return rc == 1;
}
