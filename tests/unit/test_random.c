/* test_random.c - shop_random_bytes: successive draws differ, small and large requests are
 * filled, threads draw different bytes, and a forked child does not repeat its parent's next
 * bytes (the per-thread generator reseeds after a fork); shop_random_hex writes exactly 2n
 * lower-case hex digits and a NUL, different each time. */
#include "libshop/random.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *draw(void *arg)
{
    shop_random_bytes(arg, 32);
    return NULL;
}

int main(void)
{
    unsigned char a[32], b[32], zero[600] = {0}, big[600];
    shop_random_bytes(a, sizeof(a));
    shop_random_bytes(b, sizeof(b));
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    memset(big, 0, sizeof(big));
    shop_random_bytes(big, sizeof(big)); /* above the per-thread generator's size */
    CHECK(memcmp(big, zero, 64) != 0 && memcmp(big + 536, zero, 64) != 0);
    shop_random_bytes(big, 256);
    CHECK(memcmp(big + 192, zero, 64) != 0);

    pthread_t t;
    unsigned char other[32];
    CHECK(pthread_create(&t, NULL, draw, other) == 0 && pthread_join(t, NULL) == 0);
    shop_random_bytes(a, sizeof(a));
    CHECK(memcmp(a, other, sizeof(a)) != 0);

    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        shop_random_bytes(a, sizeof(a));
        _exit(write(fds[1], a, sizeof(a)) == (ssize_t)sizeof(a) ? 0 : 1);
    }
    shop_random_bytes(b, sizeof(b));
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    CHECK(read(fds[0], a, sizeof(a)) == (ssize_t)sizeof(a));
    CHECK(memcmp(a, b, sizeof(a)) != 0); /* the child reseeded */
    close(fds[0]);
    close(fds[1]);

    char h1[66], h2[66];
    memset(h1, 'x', sizeof(h1));
    shop_random_hex(h1, 32);
    CHECK(strlen(h1) == 64 && strspn(h1, "0123456789abcdef") == 64 && h1[65] == 'x');
    shop_random_hex(h2, 32);
    CHECK(strcmp(h1, h2) != 0);
    shop_random_hex(h2, 0);
    CHECK(h2[0] == '\0');
    return check_report("random");
}
