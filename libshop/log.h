/* log.h - levelled one-line logs on stderr with syslog priority prefixes (journald reads them). */
#ifndef SHOP_LOG_H
#define SHOP_LOG_H

enum shop_log_level {
    SHOP_LOG_ERR = 3,
    SHOP_LOG_WARN = 4,
    SHOP_LOG_INFO = 6,
    SHOP_LOG_DEBUG = 7,
};

extern int shop_log_level;

/* Sets the level from a name (error, warn, info, debug; also trace, fatal). Returns 0 or -1. */
int shop_log_set_level(const char *name);
/* Sets the service name printed in each line ("svc=..."). */
void shop_log_init(const char *service);

/* All of these keep errno. log_warn appends strerror(errno); log_warnx does not. */
void shop_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shop_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void shop_log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void shop_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One access line (level info): batched, written within 50 ms; at most SHOP_ACCESS_LOG_MAX a
 * second, the rest counted in one line (see log.c). */
void shop_log_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The access lines' budget a second (0: no limit; default 1000); shop_service_init sets it from
 * SHOP_ACCESS_LOG_MAX. */
void shop_log_set_access_max(unsigned per_second);
/* Writes out pending access lines now (also done at exit and before every ordinary line). */
void shop_log_flush(void);
void shop_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define shop_log_debug(...)                                                                        \
    do {                                                                                           \
        if (shop_log_level >= SHOP_LOG_DEBUG)                                                      \
            shop_log(SHOP_LOG_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif
