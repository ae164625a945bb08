/* test_tls.c - per-thread objects (shop_tls): one per thread, made on first use, destroyed
 * when the thread ends or on shop_tls_drop, and a failed make is tried again. */
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdlib.h>

static atomic_int made, destroyed, fail_next;

static void *make(void)
{
    if (atomic_exchange(&fail_next, 0))
        return NULL;
    atomic_fetch_add(&made, 1);
    return shop_xcalloc(1, sizeof(int));
}

static void destroy(void *p)
{
    atomic_fetch_add(&destroyed, 1);
    free(p);
}

static struct shop_tls objs = SHOP_TLS(make, destroy);

static void *worker(void *arg)
{
    int *a = shop_tls_get(&objs), *b = shop_tls_get(&objs);
    *(int *)arg = a && a == b;
    return NULL;
}

int main(void)
{
    pthread_t t[8];
    int same[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, worker, &same[i]);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    int all_same = 1;
    for (int i = 0; i < 8; i++)
        all_same &= same[i];
    CHECK(all_same);
    CHECK(made == 8 && destroyed == 8); /* one each, gone with its thread */

    atomic_store(&fail_next, 1);
    CHECK(shop_tls_get(&objs) == NULL); /* make failed: nothing kept */
    int *p = shop_tls_get(&objs);       /* and it is tried again */
    CHECK(p != NULL && shop_tls_get(&objs) == p && made == 9);
    shop_tls_drop(&objs);
    CHECK(destroyed == 9);
    shop_tls_drop(&objs); /* nothing left: no second destroy */
    CHECK(destroyed == 9);
    CHECK(shop_tls_get(&objs) != NULL && made == 10); /* a fresh one after a drop */
    shop_tls_drop(&objs);
    return check_report("tls");
}
