/* test_conf.c - environment aliases, defaults, URL, host:port and listen address parsing. */
#include "libshop/conf.h"
#include "libshop/log.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

static void test_aliases(void)
{
    unsetenv("T_A");
    unsetenv("T_B");
    CHECK_STR(shop_conf_str("T_A|T_B", "def"), "def");
    setenv("T_B", "b", 1);
    CHECK_STR(shop_conf_str("T_A|T_B", "def"), "b");
    setenv("T_A", "a", 1);
    CHECK_STR(shop_conf_str("T_A|T_B", "def"), "a");
    setenv("T_A", "", 1); /* empty counts as unset */
    CHECK_STR(shop_conf_str("T_A|T_B", "def"), "b");
    setenv("T_PORT", "8081", 1);
    CHECK(shop_conf_port("T_PORT", 8080) == 8081);
    unsetenv("T_PORT");
    CHECK(shop_conf_port("T_PORT", 8080) == 8080);
    setenv("T_PORT", "0", 1); /* a listener may take any free port; a peer's port is never 0 */
    CHECK(shop_conf_listen_port("T_PORT", 8080) == 0);
    unsetenv("T_PORT");
    setenv("T_N", " 42 ", 1);
    CHECK(shop_conf_long("T_N", 0, 0, 100) == 42);
    setenv("T_BOOL", "TRUE", 1);
    CHECK(shop_conf_bool("T_BOOL", false) == true);
}

static void test_urls(void)
{
    struct shop_url u;
    CHECK(shop_url_parse("redis://:secret@cache.local:6380/2", &u) == 0);
    CHECK_STR(u.scheme, "redis");
    CHECK_STR(u.pass, "secret");
    CHECK_STR(u.host, "cache.local");
    CHECK(u.port == 6380);
    CHECK_STR(u.path, "2");
    CHECK(shop_url_parse("mongodb://mongodb:27017/catalogue?x=1", &u) == 0);
    CHECK_STR(u.path, "catalogue");
    CHECK(shop_url_parse("amqp://user:p%40ss@h/", &u) == 0);
    CHECK_STR(u.user, "user");
    CHECK(u.port == 0);
    CHECK(shop_url_parse("redis://[::1]:7000", &u) == 0);
    CHECK_STR(u.host, "::1");
    CHECK(u.port == 7000);
    CHECK(shop_url_parse("no-scheme", &u) == -1);
    CHECK(shop_url_parse("redis://:99999", &u) == -1);
    CHECK(shop_url_parse("redis://host:abc", &u) == -1);
}

static void test_hostport(void)
{
    char host[64];
    int port = 3306;
    CHECK(shop_hostport_parse("mysql", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "mysql");
    CHECK(port == 3306);
    CHECK(shop_hostport_parse("10.0.0.5:3307", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "10.0.0.5");
    CHECK(port == 3307);
    CHECK(shop_hostport_parse(":3307", host, sizeof(host), &port) == -1);
    CHECK(shop_hostport_parse("h:0", host, sizeof(host), &port) == -1);
    CHECK(shop_hostport_parse("h:", host, sizeof(host), &port) == -1);
    port = 8080; /* a bare IPv6 address is all host: its last group is not a port */
    CHECK(shop_hostport_parse("fd00::5", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "fd00::5");
    CHECK(port == 8080);
    CHECK(shop_hostport_parse("::1", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "::1");
    CHECK(shop_hostport_parse("[fd00::5]:81", host, sizeof(host), &port) == 0);
    CHECK_STR(host, "fd00::5");
    CHECK(port == 81);
}

/* Peer base URLs, as cart, payment, shipping and ratings build them (bad values are fatal and
 * tested through the services' start-up in the contract tests). */
static void test_peers(void)
{
    char out[128];
    unsetenv("T_HOST");
    setenv("T_PORTV", "8085", 1);
    shop_conf_peer(out, sizeof(out), "T_HOST", "cart", "T_PORTV", 8080);
    CHECK_STR(out, "http://cart:8085");
    setenv("T_HOST", "10.1.2.3:9000", 1); /* a port in the host wins */
    shop_conf_peer(out, sizeof(out), "T_HOST", "cart", "T_PORTV", 8080);
    CHECK_STR(out, "http://10.1.2.3:9000");
    setenv("T_HOST", "[::1]", 1);
    unsetenv("T_PORTV");
    shop_conf_peer(out, sizeof(out), "T_HOST", "cart", "T_PORTV", 8080);
    CHECK_STR(out, "http://[::1]:8080");
    setenv("T_HOST", "fd00::5", 1); /* bare: bracketed, default port */
    shop_conf_peer(out, sizeof(out), "T_HOST", "cart", "T_PORTV", 8080);
    CHECK_STR(out, "http://[fd00::5]:8080");

    unsetenv("T_BASE");
    shop_conf_base_url(out, sizeof(out), "T_BASE", "cart:8080");
    CHECK_STR(out, "http://cart:8080");
    setenv("T_BASE", "https://catalogue.example:8443//", 1);
    shop_conf_base_url(out, sizeof(out), "T_BASE", "cart:8080");
    CHECK_STR(out, "https://catalogue.example:8443");
    setenv("T_BASE", "http://10.0.0.7/api/", 1);
    shop_conf_base_url(out, sizeof(out), "T_BASE", "cart:8080");
    CHECK_STR(out, "http://10.0.0.7/api");
}

/* SHOP_BIND's listen address: an IPv4 or IPv6 literal (bracketed too), never a name, a port
 * or anything around the address (bad values are fatal, tested through a service's start-up). */
static void test_listen_address(void)
{
    struct sockaddr_storage sa;
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&sa;
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&sa;
    CHECK(shop_addr_parse("127.0.0.1", 8080, &sa) == sizeof(struct sockaddr_in));
    CHECK(v4->sin_family == AF_INET && ntohs(v4->sin_port) == 8080);
    CHECK(v4->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(shop_addr_parse("0.0.0.0", 0, &sa) == sizeof(struct sockaddr_in));
    CHECK(v4->sin_addr.s_addr == htonl(INADDR_ANY) && v4->sin_port == 0);
    CHECK(shop_addr_parse("::1", 81, &sa) == sizeof(struct sockaddr_in6));
    CHECK(v6->sin6_family == AF_INET6 && ntohs(v6->sin6_port) == 81);
    CHECK(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    CHECK(shop_addr_parse("[::1]", 81, &sa) == sizeof(struct sockaddr_in6));
    CHECK(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    CHECK(shop_addr_parse("::", 81, &sa) == sizeof(struct sockaddr_in6));
    CHECK(IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr));
    CHECK(shop_addr_parse("::ffff:10.0.0.1", 81, &sa) == sizeof(struct sockaddr_in6));
    CHECK(IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr));
    static const char *bad[] = {
        "",           "localhost",    "127.0.0.1:8080", "127.1",    "127.0.0.256",
        " 127.0.0.1", "127.0.0.1 ",   "[127.0.0.1]",    "[::1]:80", "[::1",
        "::1]",       "fe80::1%eth0", "1::2::3",        "[]",       "0x7f.0.0.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        socklen_t n = shop_addr_parse(bad[i], 80, &sa);
        if (n != 0)
            fprintf(stderr, "accepted the listen address \"%s\"\n", bad[i]);
        CHECK(n == 0);
    }

    unsetenv("T_BIND"); /* unset: the default */
    CHECK(shop_conf_bind("T_BIND", "0.0.0.0", 8080, &sa) == sizeof(struct sockaddr_in));
    CHECK(v4->sin_addr.s_addr == htonl(INADDR_ANY) && ntohs(v4->sin_port) == 8080);
    setenv("T_BIND", "::1", 1);
    CHECK(shop_conf_bind("T_BIND", "0.0.0.0", 8080, &sa) == sizeof(struct sockaddr_in6));
    CHECK(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) && ntohs(v6->sin6_port) == 8080);
    unsetenv("T_BIND");
}

int main(void)
{
    shop_log_set_level("error");
    test_aliases();
    test_urls();
    test_hostport();
    test_peers();
    test_listen_address();
    return check_report("conf");
}
