/* passwd.c - yescrypt hashing through libxcrypt (crypt_gensalt_ra + crypt_ra), verification
 * of yescrypt, legacy bcrypt and legacy plaintext records, the upgrade test, and the bound on
 * hashes running at once (admission, a dummy setting for unknown names). */
#include "libshop/passwd.h"
#include "libshop/log.h"
#include "libshop/util.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Cost 0 = libxcrypt's default for yescrypt ("j9T", about 20 ms per hash on a 2-core VM). */
#define YESCRYPT_COST 0

/* A yescrypt hash of the default cost works in 16 MiB of memory. At most this many run at
 * once, so a burst of logins costs that memory per core rather than per worker thread (it
 * shows in VmHWM), and extra logins queue instead of slowing every hash down. */
#define HASH_CONCURRENCY 2

static const char *const hash_prefixes[] = {"$y$", "$2a$", "$2b$", "$2y$"};
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static sem_t hash_slots;
static atomic_uint admitted;  /* callers inside run_crypt: hashing or waiting for a slot */
static atomic_uint admit_max; /* 0 = no limit */

struct shop_counter shop_passwd_hashes =
    SHOP_COUNTER_INIT("user_password_hashes_total",
                      "Password hashes computed (logins, registrations, upgrades).", SHOP_NUM_JS);
struct shop_counter shop_passwd_hashes_begun = SHOP_COUNTER_INIT(
    "user_password_hashes_begun_total",
    "Password hashes admitted (computed + running or waiting for a core now).", SHOP_NUM_JS);
struct shop_counter shop_passwd_hashes_busy = SHOP_COUNTER_INIT(
    "user_password_hashes_busy_total",
    "Hashes refused at once because every admitted slot was taken (503).", SHOP_NUM_JS);

static void slots_init(void)
{
    sem_init(&hash_slots, 0, HASH_CONCURRENCY);
}

void shop_passwd_set_limit(unsigned n)
{
    atomic_store(&admit_max, n);
}

/* Takes an admission (false when the limit is reached: nothing taken). */
static bool admit(void)
{
    unsigned max = atomic_load(&admit_max);
    if (atomic_fetch_add(&admitted, 1) >= max && max > 0) {
        atomic_fetch_sub(&admitted, 1);
        shop_counter_add(&shop_passwd_hashes_busy, 1);
        return false;
    }
    shop_counter_add(&shop_passwd_hashes_begun, 1);
    return true;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char current_params[64]; /* "$y$j9T$": what a fresh hash starts with */

static void params_init(void)
{
    char *setting = crypt_gensalt_ra("$y$", YESCRYPT_COST, NULL, 0);
    if (!setting) {
        shop_log_warn("crypt_gensalt_ra($y$)");
        return;
    }
    const char *third = strchr(setting + 3, '$');
    size_t n = third ? (size_t)(third - setting + 1) : 0;
    if (n > 0 && n < sizeof(current_params))
        memcpy(current_params, setting, n);
    free(setting);
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

bool shop_passwd_is_hash(const char *stored)
{
    for (size_t i = 0; i < sizeof(hash_prefixes) / sizeof(hash_prefixes[0]); i++)
        if (has_prefix(stored, hash_prefixes[i]))
            return true;
    return false;
}

/* An admission beyond the limit, for the calls that wait their turn (tools, tests). */
static void admit_always(void)
{
    atomic_fetch_add(&admitted, 1);
    shop_counter_add(&shop_passwd_hashes_begun, 1);
}

/* Compares two strings in time that depends only on their lengths. */
static bool ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
    volatile unsigned char diff = la != lb;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

/* crypt(3) of password with setting (a salt or a whole hash), for an admitted caller (gives the
 * admission back). Heap string or NULL. */
static char *run_crypt(const char *password, const char *setting)
{
    void *data = NULL;
    int size = 0;
    char *out = NULL;
    pthread_once(&slots_once, slots_init);
    while (sem_wait(&hash_slots) == -1 && errno == EINTR)
        ;
    const char *h = crypt_ra(password, setting, &data, &size);
    if (h && h[0] != '*')
        out = shop_xstrdup(h);
    sem_post(&hash_slots);
    atomic_fetch_sub(&admitted, 1);
    if (out) /* only a hash crypt(3) really computed: a refused setting costs nothing */
        shop_counter_add(&shop_passwd_hashes, 1);
    if (data) {
        explicit_bzero(data, (size_t)size);
        free(data);
    }
    return out;
}

/* A fresh yescrypt setting ("$y$j9T$<salt>"), heap, or NULL (logged). */
static char *new_setting(void)
{
    char *setting = crypt_gensalt_ra("$y$", YESCRYPT_COST, NULL, 0);
    if (!setting)
        shop_log_warn("crypt_gensalt_ra($y$)");
    return setting;
}

enum shop_passwd_rc shop_passwd_make(const char *password, char **out)
{
    *out = NULL;
    char *setting = new_setting();
    if (!setting)
        return SHOP_PASSWD_FAILED;
    if (!admit()) {
        free(setting);
        return SHOP_PASSWD_BUSY;
    }
    *out = run_crypt(password, setting);
    free(setting);
    if (!*out) {
        shop_log_warnx("yescrypt hashing failed");
        return SHOP_PASSWD_FAILED;
    }
    return 0;
}

enum shop_passwd_rc shop_passwd_check(const char *password, const char *stored)
{
    if (!password)
        return SHOP_PASSWD_MISMATCH;
    bool real = stored && shop_passwd_is_hash(stored);
    /* No record to check against: hash with a fresh setting of the current cost, compare nothing.
     * (A setting followed by a hash part crypt(3) cannot have made, such as '*'s, is refused at
     * once, without hashing: the dummy must be a bare setting.) */
    char *dummy = real ? NULL : new_setting();
    const char *setting = real ? stored : dummy;
    if (!setting)
        return SHOP_PASSWD_FAILED;
    if (!admit()) {
        free(dummy);
        return SHOP_PASSWD_BUSY;
    }
    char *h = run_crypt(password, setting);
    bool ok = false; /* a corrupt record (no h) matches nothing */
    if (real)
        ok = h && ct_equal(h, stored);
    else if (stored)
        ok = ct_equal(password, stored);
    free(h);
    free(dummy);
    return ok ? SHOP_PASSWD_MATCH : SHOP_PASSWD_MISMATCH;
}

char *shop_passwd_hash(const char *password)
{
    char *setting = new_setting();
    if (!setting)
        return NULL;
    admit_always();
    char *h = run_crypt(password, setting);
    free(setting);
    if (!h)
        shop_log_warnx("yescrypt hashing failed");
    return h;
}

bool shop_passwd_verify(const char *password, const char *stored)
{
    if (!password || !stored)
        return false;
    if (!shop_passwd_is_hash(stored))
        return ct_equal(password, stored);
    admit_always();
    char *h = run_crypt(password, stored);
    bool ok = h && ct_equal(h, stored);
    free(h);
    return ok;
}

bool shop_passwd_needs_upgrade(const char *stored)
{
    pthread_once(&once, params_init);
    if (!stored || !has_prefix(stored, "$y$"))
        return true;
    return current_params[0] && !has_prefix(stored, current_params);
}
