/* backoff.c - failed-login records per (name, client address) (see backoff.h). A record is a
 * keyed 64-bit hash of the pair, not the pair itself, so the table is small and holds no name;
 * the key is random per process, so nobody can aim two pairs at one record. */
#include "services/user/backoff.h"
#include "libshop/random.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SLOTS 4096 /* pairs remembered at once (32 bytes each) */

struct record {
    uint64_t key; /* 0 = free */
    int failures;
    long long last_ms;   /* time of the last failure */
    long long locked_ms; /* no attempt before this time */
};

static const struct backoff_conf defaults = {5, 30000, 900000, 3600000};
static struct backoff_conf policy = {5, 30000, 900000, 3600000};
static struct record table[SLOTS];
static uint64_t seed[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t seeded = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
    shop_random_bytes(seed, sizeof(seed));
}

void backoff_setup(const struct backoff_conf *conf)
{
    pthread_mutex_lock(&lock);
    policy = conf ? *conf : defaults;
    memset(table, 0, sizeof(table));
    pthread_mutex_unlock(&lock);
}

/* FNV-1a over the seed, the name, a NUL and the client, mixed once more at the end. */
static uint64_t pair_key(const char *name, const char *client)
{
    pthread_once(&seeded, seed_init);
    uint64_t h = 0xcbf29ce484222325ULL ^ seed[0];
    const char *parts[2] = {name, client};
    for (int p = 0; p < 2; p++) {
        for (const unsigned char *s = (const unsigned char *)parts[p]; *s; s++)
            h = (h ^ *s) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL; /* the separator: ("ab","c") != ("a","bc") */
    }
    h ^= seed[1];
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

static bool stale(const struct record *r, long long now_ms)
{
    return r->key && now_ms >= r->locked_ms && now_ms - r->last_ms >= policy.forget_ms;
}

/* The record of key, or NULL. Caller holds the lock. */
static struct record *find(uint64_t key)
{
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i].key == key)
            return &table[i];
    return NULL;
}

/* A record for key: its own, else a free or stale one, else the one with the oldest failure
 * (it gives way). Caller holds the lock. */
static struct record *claim(uint64_t key, long long now_ms)
{
    struct record *r = find(key), *oldest = &table[0];
    if (r)
        return r;
    for (size_t i = 0; i < SLOTS; i++) {
        if (!table[i].key || stale(&table[i], now_ms)) {
            oldest = &table[i];
            break;
        }
        if (table[i].last_ms < oldest->last_ms)
            oldest = &table[i];
    }
    memset(oldest, 0, sizeof(*oldest));
    oldest->key = key;
    return oldest;
}

long backoff_wait(const char *name, const char *client, long long now_ms)
{
    uint64_t key = pair_key(name, client);
    long wait = 0;
    pthread_mutex_lock(&lock);
    struct record *r = find(key);
    if (r && r->locked_ms > now_ms)
        wait = (long)(r->locked_ms - now_ms);
    pthread_mutex_unlock(&lock);
    return wait;
}

/* The wait after the n-th failure in a row: none up to free_failures, then the first wait,
 * doubled per further failure, at most max_wait_ms. */
static long wait_after(int n)
{
    if (n < policy.free_failures)
        return 0;
    long w = policy.first_wait_ms;
    for (int i = policy.free_failures; i < n && w < policy.max_wait_ms; i++)
        w *= 2;
    return w < policy.max_wait_ms ? w : policy.max_wait_ms;
}

void backoff_failed(const char *name, const char *client, long long now_ms)
{
    uint64_t key = pair_key(name, client);
    pthread_mutex_lock(&lock);
    struct record *r = claim(key, now_ms);
    if (stale(r, now_ms))
        r->failures = 0;
    if (r->failures < 1000)
        r->failures++;
    r->last_ms = now_ms;
    r->locked_ms = now_ms + wait_after(r->failures);
    pthread_mutex_unlock(&lock);
}

void backoff_succeeded(const char *name, const char *client)
{
    uint64_t key = pair_key(name, client);
    pthread_mutex_lock(&lock);
    struct record *r = find(key);
    if (r)
        memset(r, 0, sizeof(*r));
    pthread_mutex_unlock(&lock);
}
