/* random.c - random bytes and numbers on libsodium, initialised on first use (see random.h).
 * Small requests (session tokens, ids: one per request on hot routes) come from a per-thread
 * ChaCha20 generator seeded from the kernel, instead of a getrandom system call each: after every
 * call its key is replaced by the first 32 bytes of its own output (fast key erasure), so what
 * it gave out cannot be worked out from a later state; a forked child reseeds. */
#include "libshop/random.h"
#include "libshop/log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define SMALL 256 /* larger requests go to the kernel directly */

struct rng {
    unsigned char key[crypto_stream_chacha20_KEYBYTES];
    unsigned gen; /* the process generation it was seeded in */
    bool seeded;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uint g_gen; /* bumped in a forked child: every thread's generator reseeds */
static _Thread_local struct rng t_rng;

static void forked(void)
{
    atomic_fetch_add(&g_gen, 1);
}

static void init(void)
{
    if (sodium_init() < 0)
        shop_fatalx("libsodium initialisation failed");
    pthread_atfork(NULL, NULL, forked);
}

void shop_random_bytes(void *buf, size_t n)
{
    pthread_once(&once, init);
    if (n > SMALL) {
        randombytes_buf(buf, n);
        return;
    }
    struct rng *r = &t_rng;
    unsigned gen = atomic_load(&g_gen);
    if (!r->seeded || r->gen != gen) {
        randombytes_buf(r->key, sizeof(r->key));
        r->gen = gen;
        r->seeded = true;
    }
    static const unsigned char nonce[crypto_stream_chacha20_NONCEBYTES];
    unsigned char out[sizeof(r->key) + SMALL];
    crypto_stream_chacha20(out, sizeof(r->key) + n, nonce, r->key);
    memcpy(r->key, out, sizeof(r->key));
    memcpy(buf, out + sizeof(r->key), n);
    sodium_memzero(out, sizeof(r->key) + n);
}

void shop_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[SMALL];
    if (nbytes > sizeof(raw))
        shop_fatalx("shop_random_hex: %zu bytes asked, at most %zu", nbytes, sizeof(raw));
    shop_random_bytes(raw, nbytes);
    sodium_bin2hex(out, 2 * nbytes + 1, raw, nbytes); /* lower-case, NUL-terminated */
}

uint32_t shop_random_uniform(uint32_t upper)
{
    pthread_once(&once, init);
    return randombytes_uniform(upper);
}
