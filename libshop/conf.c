/* conf.c - environment variables with aliases, defaults and fatal validation. */
#include "libshop/conf.h"
#include "libshop/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool looks_secret(const char *name)
{
    return strstr(name, "PASS") || strstr(name, "SECRET") || strstr(name, "TOKEN");
}

/* Finds the first set alias. *used receives its name (copied into buf). */
static const char *lookup(const char *names, char *used, size_t usedlen)
{
    const char *p = names;
    while (*p) {
        size_t n = strcspn(p, "|");
        if (n < usedlen) {
            memcpy(used, p, n);
            used[n] = '\0';
            const char *v = getenv(used);
            if (v && *v)
                return v;
        }
        p += n;
        if (*p == '|')
            p++;
    }
    size_t n = strcspn(names, "|");
    if (n >= usedlen)
        n = usedlen - 1;
    memcpy(used, names, n);
    used[n] = '\0';
    return NULL;
}

static void echo(const char *name, const char *value, bool dflt)
{
    const char *shown = value ? value : "(unset)";
    if (value && looks_secret(name))
        shown = "******";
    shop_log_info("config %s=%s%s", name, shown, dflt ? " (default)" : "");
}

/* Credentials inside URLs (user:pass@host) are masked when echoed. */
static void echo_url_safe(const char *name, const char *value, bool dflt)
{
    const char *at = value ? strchr(value, '@') : NULL;
    const char *scheme = value ? strstr(value, "://") : NULL;
    if (at && scheme && scheme < at) {
        shop_log_info("config %s=%.*s://******@%s%s", name, (int)(scheme - value), value, at + 1,
                      dflt ? " (default)" : "");
        return;
    }
    echo(name, value, dflt);
}

const char *shop_conf_str(const char *names, const char *def)
{
    char used[64];
    const char *v = lookup(names, used, sizeof(used));
    echo_url_safe(used, v ? v : def, v == NULL);
    return v ? v : def;
}

long shop_conf_long(const char *names, long def, long min, long max)
{
    char used[64];
    const char *v = lookup(names, used, sizeof(used));
    if (!v) {
        shop_log_info("config %s=%ld (default)", used, def);
        return def;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || end == v || *end || n < min || n > max)
        shop_fatalx("config: %s=\"%s\" is not an integer in [%ld, %ld]", used, v, min, max);
    shop_log_info("config %s=%ld", used, n);
    return n;
}

int shop_conf_port(const char *names, int def)
{
    return (int)shop_conf_long(names, def, 1, 65535);
}

int shop_conf_listen_port(const char *names, int def)
{
    return (int)shop_conf_long(names, def, 0, 65535);
}

bool shop_conf_bool(const char *names, bool def)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    char used[64];
    const char *v = lookup(names, used, sizeof(used));
    if (!v)
        return def;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return true;
        if (strcasecmp(v, no[i]) == 0)
            return false;
    }
    shop_fatalx("config: %s=\"%s\" is not a boolean (true/false)", used, v);
}

static int copy_part(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n >= dstlen)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* true for an IPv6 address written without brackets: hex digits, dots (an embedded IPv4) and
 * at least two colons. It has no port: its last group is not one. */
static bool bare_ipv6(const char *s)
{
    const char *c = strchr(s, ':');
    return c && strchr(c + 1, ':') && s[strspn(s, "0123456789abcdefABCDEF:.")] == '\0';
}

int shop_hostport_parse(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return -1;
        if (copy_part(host, hostlen, s + 1, (size_t)(close - s - 1)) == -1)
            return -1;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1])
            return -1;
        hlen = (size_t)(close - s - 1);
    } else {
        colon = bare_ipv6(s) ? NULL : strrchr(s, ':');
        hlen = colon ? (size_t)(colon - s) : strlen(s);
        if (copy_part(host, hostlen, s, hlen) == -1)
            return -1;
    }
    if (hlen == 0)
        return -1;
    if (colon) {
        char *end;
        errno = 0;
        long p = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
            return -1;
        *port = (int)p;
    }
    return 0;
}

int shop_url_parse(const char *s, struct shop_url *u)
{
    memset(u, 0, sizeof(*u));
    const char *sep = strstr(s, "://");
    if (!sep || copy_part(u->scheme, sizeof(u->scheme), s, (size_t)(sep - s)) == -1)
        return -1;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    /* userinfo ends at the last '@' inside the authority */
    const char *at = NULL;
    for (const char *p = auth; p < rest; p++)
        if (*p == '@')
            at = p;
    const char *hp = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        if (copy_part(u->user, sizeof(u->user), auth, ulen) == -1)
            return -1;
        if (colon && copy_part(u->pass, sizeof(u->pass), colon + 1, (size_t)(at - colon - 1)) == -1)
            return -1;
        hp = at + 1;
    }
    char hostport[300];
    if (copy_part(hostport, sizeof(hostport), hp, (size_t)(rest - hp)) == -1)
        return -1;
    if (shop_hostport_parse(hostport, u->host, sizeof(u->host), &u->port) == -1)
        return -1;
    if (*rest == '/') {
        size_t plen = strcspn(rest + 1, "?#");
        if (copy_part(u->path, sizeof(u->path), rest + 1, plen) == -1)
            return -1;
    }
    return 0;
}

/* Puts "http://host:port" in out, with brackets around an IPv6 literal; -1 when it does not fit. */
static int http_base(char *out, size_t outlen, const char *host, int port)
{
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, outlen, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

void shop_conf_peer(char *out, size_t outlen, const char *host_var, const char *def_host,
                    const char *port_var, int def_port)
{
    const char *value = shop_conf_str(host_var, def_host);
    int port = shop_conf_port(port_var, def_port);
    char host[256];
    if (shop_hostport_parse(value, host, sizeof(host), &port) == -1 ||
        http_base(out, outlen, host, port) == -1)
        shop_fatalx("config: %s=\"%s\" is not host or host:port", host_var, value);
}

bool shop_url_is_http(const char *s)
{
    struct shop_url u;
    return shop_url_parse(s, &u) == 0 &&
           (strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0);
}

void shop_conf_base_url(char *out, size_t outlen, const char *names, const char *def)
{
    const char *value = shop_conf_str(names, def);
    bool has_scheme = strstr(value, "://") != NULL;
    int n = snprintf(out, outlen, "%s%s", has_scheme ? "" : "http://", value);
    if (n <= 0 || (size_t)n >= outlen || !shop_url_is_http(out))
        shop_fatalx("config: %s=\"%s\" is not host:port or an http(s):// URL", names, value);
    size_t len = (size_t)n;
    while (len > 0 && out[len - 1] == '/')
        out[--len] = '\0';
}

socklen_t shop_addr_parse(const char *s, int port, struct sockaddr_storage *sa)
{
    memset(sa, 0, sizeof(*sa));
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    if (inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return sizeof(*v4);
    }
    char bare[INET6_ADDRSTRLEN];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') { /* the bracketed form of URLs */
        s++;
        n -= 2;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (copy_part(bare, sizeof(bare), s, n) == -1 || inet_pton(AF_INET6, bare, &v6->sin6_addr) != 1)
        return 0;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return sizeof(*v6);
}

socklen_t shop_conf_bind(const char *names, const char *def, int port, struct sockaddr_storage *sa)
{
    const char *value = shop_conf_str(names, def);
    socklen_t len = shop_addr_parse(value, port, sa);
    if (len == 0)
        shop_fatalx("config: %s=\"%s\" is not an IPv4 or IPv6 address (e.g. 127.0.0.1 or ::1)",
                    names, value);
    return len;
}
