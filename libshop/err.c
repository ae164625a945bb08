/* err.c - the shared backend error and its one reply helper (see err.h). */
#include "libshop/err.h"
#include "libshop/http.h"
#include "libshop/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

void shop_err_set(struct shop_err *e, enum shop_err_kind kind, long code, const char *fmt, ...)
{
    va_list ap;
    e->kind = kind;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

static void reply_body(struct shop_req *req, int status, const char *text, bool json)
{
    if (json)
        shop_reply_json(req, status, json_pack("{s:s}", "error", text));
    else
        shop_reply_text(req, status, text);
}

void shop_reply_err(struct shop_req *req, const struct shop_err *e,
                    const struct shop_err_reply *how)
{
    int status = e->kind == SHOP_ERR_UNAVAILABLE ? 503 : 500;
    if (status == 500)
        shop_log_warnx("rid=%s backend error: %s", shop_req_id(req), e->msg);
    if (how->custom)
        how->custom(req, status);
    else if (status == 503)
        reply_body(req, 503, how->down, how->down_json);
    else
        reply_body(req, 500, how->failed ? how->failed : e->msg, how->failed_json);
}
