/* log.c - one line per event, written with a single write(2) so threads never interleave. */
#include "libshop/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int shop_log_level = SHOP_LOG_INFO;
static const char *log_service = "shop";

void shop_log_init(const char *service)
{
    log_service = service;
}

int shop_log_set_level(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"fatal", SHOP_LOG_ERR},    {"error", SHOP_LOG_ERR}, {"warn", SHOP_LOG_WARN},
        {"warning", SHOP_LOG_WARN}, {"info", SHOP_LOG_INFO}, {"debug", SHOP_LOG_DEBUG},
        {"trace", SHOP_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            shop_log_level = names[i].level;
            return 0;
        }
    }
    return -1;
}

static void vlog(int level, const char *suffix, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof(line), "<%d>svc=%s ", level, log_service);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    if (suffix) {
        int k = snprintf(line + len, sizeof(line) - len, ": %s", suffix);
        if (k > 0)
            len += (size_t)k;
        if (len > sizeof(line) - 2)
            len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void shop_log(int level, const char *fmt, ...)
{
    if (level > shop_log_level)
        return;
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
    errno = saved;
}

void shop_log_warn(const char *fmt, ...)
{
    int saved = errno;
    if (SHOP_LOG_WARN <= shop_log_level) {
        va_list ap;
        va_start(ap, fmt);
        vlog(SHOP_LOG_WARN, strerror(saved), fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

void shop_log_warnx(const char *fmt, ...)
{
    int saved = errno;
    if (SHOP_LOG_WARN <= shop_log_level) {
        va_list ap;
        va_start(ap, fmt);
        vlog(SHOP_LOG_WARN, NULL, fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

void shop_log_info(const char *fmt, ...)
{
    int saved = errno;
    if (SHOP_LOG_INFO <= shop_log_level) {
        va_list ap;
        va_start(ap, fmt);
        vlog(SHOP_LOG_INFO, NULL, fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

void shop_fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(SHOP_LOG_ERR, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}
