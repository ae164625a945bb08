/* castore.h - the host's CA certificate store, found at run time: the static binaries carry no
 * compiled-in path, and Debian-like and RHEL-like hosts keep the bundle in different places. */
#ifndef SHOP_CASTORE_H
#define SHOP_CASTORE_H

/* The well-known bundle paths, in the order they are tried (NULL-terminated). */
extern const char *const shop_ca_paths[];

/* The first readable file of paths (NULL-terminated), or NULL. */
const char *shop_ca_pick(const char *const *paths);

/* The CA bundle to verify TLS peers with: $SSL_CERT_FILE when set (OpenSSL's variable), else the
 * first readable of shop_ca_paths; NULL when the host has none. Looked up once. */
const char *shop_ca_file(void);

#endif
