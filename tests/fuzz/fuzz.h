/* fuzz.h - what the libFuzzer harnesses share: the entry point's prototype, a property check
 * that turns a broken promise into a crash (so libFuzzer saves the input), and exact-size copies
 * of the input (AddressSanitizer then sees any read past its end). */
#ifndef SHOP_FUZZ_H
#define SHOP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the parser under test; false aborts with the condition and its line. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz property broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* n bytes of p in a heap block of exactly n bytes (at least 1), not terminated. */
static inline char *fuzz_bytes(const void *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (!b)
        abort();
    memcpy(b, p, n);
    return b;
}

/* n bytes of p as a C string in a heap block of exactly n + 1 bytes; an embedded NUL ends the
 * string early, as it would in a header or an environment variable. */
static inline char *fuzz_cstr(const void *p, size_t n)
{
    char *b = malloc(n + 1);
    if (!b)
        abort();
    memcpy(b, p, n);
    b[n] = '\0';
    return b;
}

/* Splits the input at its first NUL byte: *rest and *rest_len receive what follows it (empty
 * when there is none). Returns the part before it as a C string (caller frees). */
static inline char *fuzz_split(const uint8_t *data, size_t size, const uint8_t **rest,
                               size_t *rest_len)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t n = nul ? (size_t)(nul - data) : size;
    *rest = nul ? nul + 1 : data + size;
    *rest_len = nul ? size - n - 1 : 0;
    return fuzz_cstr(data, n);
}

#endif
