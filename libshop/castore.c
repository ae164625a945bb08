/* castore.c - finds the host's CA bundle (see castore.h) for libcurl (https clients) and libmongoc
 * (MongoDB over TLS). */
#include "libshop/castore.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

const char *const shop_ca_paths[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* RHEL, Fedora, Amazon Linux */
    "/etc/ssl/ca-bundle.pem",             /* SUSE */
    "/etc/ssl/cert.pem",                  /* Alpine */
    NULL,
};

const char *shop_ca_pick(const char *const *paths)
{
    for (; *paths; paths++)
        if (access(*paths, R_OK) == 0)
            return *paths;
    return NULL;
}

static const char *found;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void look_up(void)
{
    const char *env = getenv("SSL_CERT_FILE");
    found = env && *env ? env : shop_ca_pick(shop_ca_paths);
}

const char *shop_ca_file(void)
{
    pthread_once(&once, look_up);
    return found;
}
