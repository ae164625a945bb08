/* redis_pipe.c - one Redis connection shared by every worker thread, pipelined: the commands
 * of concurrent requests go out in one write and their replies come back in one read, so a
 * request no longer costs a write and a read system call on each side, nor a connection of its
 * own. No thread of its own either: a request's thread that finds nobody writing writes for all
 * (the "writer"), one that finds nobody reading reads for all (the "reader") until its own
 * replies are in, then wakes the next waiter to take over. Replies are handed out in the order
 * the commands were sent (Redis answers in order). */
#include "libshop/redis_pipe.h"
#include "libshop/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum waiter_state { W_WAITING, W_DONE, W_FAILED, W_STALE, W_NOCONN };

/* A thread waiting for the replies of its commands (on its own stack). */
struct waiter {
    struct waiter *next;
    int n, got;
    redisReply **replies;
    struct link *link; /* the connection its commands went out on; NULL while queued */
    enum waiter_state state;
    pthread_cond_t cond;
    char err[160];
};

struct wlist {
    struct waiter *head, *tail;
};

/* One connection: freed when the pipe, the writer and the reader all let it go. */
struct link {
    redisContext *ctx;
    struct wlist sent; /* replies awaited, in the order sent */
    int refs;
    bool reading, broken, used;
};

struct redis_pipe {
    pthread_mutex_t mu;
    redis_pipe_connect_fn connect;
    struct link *link;   /* NULL before the first command and after a failure */
    struct wlist queued; /* not sent yet; their commands in buf */
    char *buf, *out;     /* out: the bytes the writer is sending (the writer's only) */
    size_t len, cap, out_cap;
    bool writing;
};

static void wlist_push(struct wlist *l, struct waiter *w)
{
    w->next = NULL;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

static void wlist_splice(struct wlist *dst, struct wlist *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* Ends a wait: its replies are in (W_DONE) or it failed with msg. */
static void finish(struct waiter *w, enum waiter_state state, const char *msg)
{
    if (state != W_DONE) {
        for (int i = 0; i < w->got; i++)
            freeReplyObject(w->replies[i]);
        w->got = 0;
        snprintf(w->err, sizeof(w->err), "%s", msg);
    }
    w->state = state;
    pthread_cond_signal(&w->cond);
}

static void fail_all(struct wlist *l, enum waiter_state state, const char *msg)
{
    struct waiter *w = l->head, *next;
    l->head = l->tail = NULL;
    for (; w; w = next) {
        next = w->next;
        finish(w, state, msg);
    }
}

static void link_unref(struct link *l)
{
    if (--l->refs > 0)
        return;
    redisFree(l->ctx);
    free(l);
}

/* Gives up a connection (once): every command sent on it fails, stale when the connection had
 * answered before and did not time out (Redis restarted: one more try makes sense). The socket is
 * shut down, which wakes a reader; it is closed when its last user lets it go. */
static void link_fail(struct redis_pipe *p, struct link *l, bool timeout, const char *msg)
{
    if (l->broken)
        return;
    l->broken = true;
    shutdown(l->ctx->fd, SHUT_RDWR);
    fail_all(&l->sent, l->used && !timeout ? W_STALE : W_FAILED, msg);
    if (p->link == l) {
        p->link = NULL;
        link_unref(l);
    }
}

/* Hands every complete reply in the reader's buffer to its waiter. -1 on a protocol error. */
static int dispatch(struct link *l)
{
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(l->ctx->reader, &r) != REDIS_OK)
            return -1;
        if (!r)
            return 0;
        struct waiter *w = l->sent.head;
        if (!w) { /* a reply nobody asked for */
            freeReplyObject(r);
            return -1;
        }
        w->replies[w->got++] = r;
        l->used = true;
        if (w->got == w->n) {
            l->sent.head = w->next;
            if (!l->sent.head)
                l->sent.tail = NULL;
            finish(w, W_DONE, NULL);
        }
    }
}

/* Reads until me's replies are in (called and returning with p->mu held), then lets the first
 * waiter left take over. */
static void read_role(struct redis_pipe *p, struct link *l, struct waiter *me)
{
    char buf[16384];
    l->reading = true;
    l->refs++;
    while (me->state == W_WAITING && !l->broken) {
        pthread_mutex_unlock(&p->mu);
        /* the socket's receive timeout is the command timeout (SO_RCVTIMEO, set on connect) */
        ssize_t got = recv(l->ctx->fd, buf, sizeof(buf), 0);
        int recv_errno = errno;
        bool fed = got > 0 && redisReaderFeed(l->ctx->reader, buf, (size_t)got) == REDIS_OK;
        pthread_mutex_lock(&p->mu);
        if (got < 0 && recv_errno == EINTR)
            continue;
        bool timeout = got < 0 && (recv_errno == EAGAIN || recv_errno == EWOULDBLOCK);
        if (!fed)
            link_fail(p, l, timeout,
                      timeout ? "redis command timed out" : "redis connection lost while reading");
        else if (dispatch(l) == -1)
            link_fail(p, l, false, "redis protocol error in a reply");
    }
    l->reading = false;
    if (l->sent.head)
        pthread_cond_signal(&l->sent.head->cond);
    link_unref(l);
}

/* Sends len bytes. NULL, or what went wrong (*timeout set when the send timed out). */
static const char *send_all(int fd, const char *buf, size_t len, bool *timeout)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *timeout = errno == EAGAIN || errno == EWOULDBLOCK;
            return *timeout ? "redis command timed out (send)"
                            : "redis connection lost while sending";
        }
        buf += n;
        len -= (size_t)n;
    }
    return NULL;
}

/* Connects (p->mu released meanwhile). On failure every queued command fails. */
static int open_link(struct redis_pipe *p)
{
    char msg[160];
    pthread_mutex_unlock(&p->mu);
    redisContext *ctx = p->connect(msg, sizeof(msg));
    pthread_mutex_lock(&p->mu);
    if (!ctx) {
        fail_all(&p->queued, W_NOCONN, msg);
        p->len = 0;
        return -1;
    }
    struct link *l = shop_xcalloc(1, sizeof(*l));
    l->ctx = ctx;
    l->refs = 1;
    p->link = l;
    return 0;
}

/* Sends whatever is queued, batch after batch, until nothing is (p->mu held on entry and exit). */
static void write_role(struct redis_pipe *p)
{
    p->writing = true;
    while (p->queued.head) {
        if (!p->link && open_link(p) == -1)
            continue;
        struct link *l = p->link;
        l->refs++;
        for (struct waiter *w = p->queued.head; w; w = w->next)
            w->link = l;
        wlist_splice(&l->sent, &p->queued);
        if (!l->reading) /* someone must read: the first waiter (maybe this thread, later) */
            pthread_cond_signal(&l->sent.head->cond);
        char *tmp = p->out;
        size_t tmp_cap = p->out_cap, len = p->len;
        p->out = p->buf;
        p->out_cap = p->cap;
        p->buf = tmp;
        p->cap = tmp_cap;
        p->len = 0;
        pthread_mutex_unlock(&p->mu);
        bool timeout = false;
        const char *err = send_all(l->ctx->fd, p->out, len, &timeout);
        pthread_mutex_lock(&p->mu);
        if (err)
            link_fail(p, l, timeout, err);
        link_unref(l);
    }
    p->writing = false;
}

static void queue_bytes(struct redis_pipe *p, const char *b, size_t n)
{
    if (p->len + n > p->cap) {
        p->cap = (p->len + n) * 2;
        p->buf = shop_xrealloc(p->buf, p->cap);
    }
    memcpy(p->buf + p->len, b, n);
    p->len += n;
}

int redis_pipe_run(struct redis_pipe *p, int n, const char *const *cmds, const int *lens,
                   redisReply **replies, char *err, size_t errlen)
{
    struct waiter w = {.n = n, .replies = replies, .state = W_WAITING};
    pthread_cond_init(&w.cond, NULL);
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++)
        queue_bytes(p, cmds[i], (size_t)lens[i]);
    wlist_push(&p->queued, &w);
    if (!p->writing)
        write_role(p);
    while (w.state == W_WAITING) {
        if (w.link && !w.link->reading)
            read_role(p, w.link, &w);
        else
            pthread_cond_wait(&w.cond, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w.cond);
    if (w.state == W_DONE)
        return REDIS_PIPE_OK;
    snprintf(err, errlen, "%s", w.err);
    return w.state == W_STALE    ? REDIS_PIPE_STALE
           : w.state == W_NOCONN ? REDIS_PIPE_NOCONN
                                 : REDIS_PIPE_FAILED;
}

struct redis_pipe *redis_pipe_new(redis_pipe_connect_fn connect)
{
    struct redis_pipe *p = shop_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    p->connect = connect;
    return p;
}

void redis_pipe_free(struct redis_pipe *p)
{
    if (!p)
        return;
    if (p->link)
        link_unref(p->link);
    pthread_mutex_destroy(&p->mu);
    free(p->buf);
    free(p->out);
    free(p);
}
