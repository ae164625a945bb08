/* fuzz_conf.c - configuration values from the environment: shop_hostport_parse (host, host:port,
 * [v6]:port) into a host buffer of a size taken from the input, shop_url_parse and
 * shop_addr_parse (SHOP_BIND). Every accepted value gives a non-empty terminated host that fitted
 * its buffer and a port in 1..65535 (or none); shop_url_is_http agrees with the parsed scheme; an
 * accepted listen address has the length of its family and the port asked for, and its printed
 * form parses to the same address.
 * Input: byte 0 sizes the host buffer, the rest is the value. */
#include "libshop/conf.h"
#include "tests/fuzz/fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>

static void check_hostport(const char *s, size_t hostlen)
{
    char *host = malloc(hostlen);
    int port = -7;
    FUZZ_CHECK(host);
    if (shop_hostport_parse(s, host, hostlen, &port) == 0) {
        size_t n = strnlen(host, hostlen);
        FUZZ_CHECK(n > 0 && n < hostlen);
        FUZZ_CHECK(port == -7 || (port >= 1 && port <= 65535));
        FUZZ_CHECK(strstr(s, host) != NULL);
    }
    free(host);
}

static bool terminated(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL;
}

static void check_url(const char *s)
{
    struct shop_url u;
    bool ok = shop_url_parse(s, &u) == 0;
    if (ok) {
        FUZZ_CHECK(terminated(u.scheme, sizeof(u.scheme)) && terminated(u.user, sizeof(u.user)));
        FUZZ_CHECK(terminated(u.pass, sizeof(u.pass)) && terminated(u.path, sizeof(u.path)));
        FUZZ_CHECK(terminated(u.host, sizeof(u.host)) && u.host[0]);
        FUZZ_CHECK(u.port == 0 || (u.port >= 1 && u.port <= 65535));
    }
    bool http = ok && (strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0);
    FUZZ_CHECK(shop_url_is_http(s) == http);
}

static void check_addr(const char *s, int port)
{
    struct sockaddr_storage sa, again;
    socklen_t len = shop_addr_parse(s, port, &sa);
    if (len == 0)
        return;
    char text[INET6_ADDRSTRLEN];
    const void *raw;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&sa;
        FUZZ_CHECK(len == sizeof(*v4) && ntohs(v4->sin_port) == port);
        raw = &v4->sin_addr;
    } else {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&sa;
        FUZZ_CHECK(sa.ss_family == AF_INET6 && len == sizeof(*v6) && ntohs(v6->sin6_port) == port);
        raw = &v6->sin6_addr;
    }
    FUZZ_CHECK(inet_ntop(sa.ss_family, raw, text, sizeof(text)) != NULL);
    FUZZ_CHECK(shop_addr_parse(text, port, &again) == len && memcmp(&sa, &again, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *s = fuzz_cstr(data + 1, size - 1);
    check_hostport(s, 1 + data[0]);
    check_url(s);
    check_addr(s, data[0]);
    free(s);
    return 0;
}
