/* conf.h - environment configuration read once at start: aliases, defaults, validation.
 * A bad value stops the process with one line naming the variable (exit 1). */
#ifndef SHOP_CONF_H
#define SHOP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* names is "NAME" or "NAME|ALIAS|...": the first one set to a non-empty value wins.
 * Each returned value is logged once at info level (masked when the name looks secret).
 * Returns a pointer into the environment, or def. */
const char *shop_conf_str(const char *names, const char *def);
/* Integer in [min, max]; anything else is fatal. */
long shop_conf_long(const char *names, long def, long min, long max);
/* TCP port 1..65535; anything else is fatal. */
int shop_conf_port(const char *names, int def);
/* A port to listen on: 1..65535, or 0 for any free port (the "listening port=N" line says which).
 */
int shop_conf_listen_port(const char *names, int def);
/* true/false/1/0/yes/no/on/off; anything else is fatal. */
bool shop_conf_bool(const char *names, bool def);

/* A parsed URL: scheme://[user[:pass]@]host[:port][/path]. Missing parts are "" / 0. */
struct shop_url {
    char scheme[16];
    char user[128];
    char pass[128];
    char host[256];
    int port;
    char path[256]; /* without the leading '/' and without any '?query' */
};

/* Parses s into u. Returns 0 or -1 when s is not a URL of that shape. */
int shop_url_parse(const char *s, struct shop_url *u);
/* Splits "host" or "host:port" (also "[v6]:port"; a bare "v6" address has no port). port is
 * left unchanged when absent.
 * Returns 0, or -1 for an empty host or a bad port. */
int shop_hostport_parse(const char *s, char *host, size_t hostlen, int *port);

/* true when s parses as an http:// or https:// URL. */
bool shop_url_is_http(const char *s);
/* A peer service's base URL "http://host:port" from a host variable (host, host:port or
 * [v6]:port; without a port, port_var or def_port gives it). A bad value is fatal. */
void shop_conf_peer(char *out, size_t outlen, const char *host_var, const char *def_host,
                    const char *port_var, int def_port);
/* A peer service's base URL from a variable holding host:port or an http(s):// URL, without
 * trailing slashes. A bad value is fatal. */
void shop_conf_base_url(char *out, size_t outlen, const char *names, const char *def);

/* Parses an IPv4 or IPv6 address literal ("127.0.0.1", "::1", also "[::1]"; no host names, no
 * port, no scope) into *sa with the TCP port port. Returns the address length, or 0 when s is
 * not such a literal. */
socklen_t shop_addr_parse(const char *s, int port, struct sockaddr_storage *sa);
/* The address a server listens on, from a variable such as SHOP_BIND holding an address literal
 * (def when unset, e.g. "0.0.0.0"), with port port. A bad value is fatal. Returns the length. */
socklen_t shop_conf_bind(const char *names, const char *def, int port, struct sockaddr_storage *sa);

#endif
