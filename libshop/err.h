/* err.h - the one error every backend call (Redis, MongoDB, MySQL, RabbitMQ) and the HTTP
 * client reports, classified by what a handler decides on, and the one helper that answers it
 * the way the contract says (503 when the backend is unreachable, D16; else 500). */
#ifndef SHOP_ERR_H
#define SHOP_ERR_H

#include <stdbool.h>

enum shop_err_kind {
    SHOP_ERR_NONE = 0,
    SHOP_ERR_UNAVAILABLE, /* the backend cannot be reached or is not serving: answer 503 */
    SHOP_ERR_REJECTED,    /* the backend refused this one operation and applied nothing
                             (duplicate key, deadlock victim): the caller decides */
    SHOP_ERR_FAILED,      /* anything else: answer 500 */
};

struct shop_err {
    enum shop_err_kind kind;
    long code; /* the backend's own error number, 0 when it gave none */
    char msg[320];
};

void shop_err_set(struct shop_err *e, enum shop_err_kind kind, long code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets the kind and code 0, keeping the message (filled by other means). Returns -1. */
static inline int shop_err_set_kind(struct shop_err *e, enum shop_err_kind kind)
{
    e->kind = kind;
    e->code = 0;
    return -1;
}
static inline bool shop_err_unavailable(const struct shop_err *e)
{
    return e->kind == SHOP_ERR_UNAVAILABLE;
}

struct shop_req;

/* How a service words its error answers. */
struct shop_err_reply {
    const char *down;   /* body of the 503 (the reference's words) */
    bool down_json;     /* sent as {"error": down} instead of plain text */
    const char *failed; /* body of the 500; NULL = the error's own message */
    bool failed_json;   /* sent as {"error": ...} instead of plain text */
    /* a service whose error bodies have their own shape (shipping's Spring JSON): when set it
     * answers instead, with the status chosen (503 or 500) */
    void (*custom)(struct shop_req *req, int status);
};

/* Answers e: 503 for SHOP_ERR_UNAVAILABLE, 500 for any other kind (logged with the request id
 * and the message). */
void shop_reply_err(struct shop_req *req, const struct shop_err *e,
                    const struct shop_err_reply *how);

#endif
