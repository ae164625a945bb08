/* test_service_init.c - service start-up blocks SIGTERM and SIGINT before the service starts any
 * thread of its own (threads inherit the mask, so none of them can take the stop signal that
 * shop_server_run waits for), and a thread started afterwards has them blocked too. */
#include "libshop/http.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <signal.h>

static void *mask_of_thread(void *out)
{
    pthread_sigmask(SIG_BLOCK, NULL, out);
    return NULL;
}

int main(void)
{
    char *argv[] = {"test", NULL};
    setenv("LOG_LEVEL", "error", 1);
    shop_service_init(1, argv, "test");
    sigset_t cur, thr;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    CHECK(sigismember(&cur, SIGTERM) == 1);
    CHECK(sigismember(&cur, SIGINT) == 1);
    pthread_t t;
    pthread_create(&t, NULL, mask_of_thread, &thr);
    pthread_join(t, NULL);
    CHECK(sigismember(&thr, SIGTERM) == 1 && sigismember(&thr, SIGINT) == 1);
    return check_report("service_init");
}
