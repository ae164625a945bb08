/* random.c - random bytes and numbers on libsodium, initialised on first use (see random.h). */
#include "libshop/random.h"
#include "libshop/log.h"

#include <pthread.h>
#include <sodium.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    if (sodium_init() < 0)
        shop_fatalx("libsodium initialisation failed");
}

void shop_random_bytes(void *buf, size_t n)
{
    pthread_once(&once, init);
    randombytes_buf(buf, n);
}

uint32_t shop_random_uniform(uint32_t upper)
{
    pthread_once(&once, init);
    return randombytes_uniform(upper);
}
