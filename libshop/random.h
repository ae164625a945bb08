/* random.h - unpredictable random numbers for ids and simulations (the operating system's
 * generator, through libsodium), safe from any thread. */
#ifndef SHOP_RANDOM_H
#define SHOP_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random bytes. */
void shop_random_bytes(void *buf, size_t n);
/* Fills out with 2 * nbytes lower-case hex digits of nbytes random bytes (at most 256), and a
 * NUL: tokens, nonces. */
void shop_random_hex(char *out, size_t nbytes);
/* A uniformly distributed number in [0, upper) (0 when upper < 2). */
uint32_t shop_random_uniform(uint32_t upper);

#endif
