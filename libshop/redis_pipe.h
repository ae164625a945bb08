/* redis_pipe.h - internal to libshop/redis.c: one Redis connection shared by every thread and
 * pipelined. A thread queues its commands and waits; whichever thread finds nobody writing sends
 * everything queued in one write, and whichever finds nobody reading reads the replies of all
 * in the order they were sent and hands each waiter its own. */
#ifndef SHOP_REDIS_PIPE_H
#define SHOP_REDIS_PIPE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Opens a ready connection (connected, authenticated, database selected), or returns NULL with
 * a message in err. Called by whichever thread writes next, on behalf of every waiter. */
typedef redisContext *(*redis_pipe_connect_fn)(char *err, size_t size);

struct redis_pipe;

enum redis_pipe_rc {
    REDIS_PIPE_OK = 0,
    REDIS_PIPE_FAILED = -1, /* the connection lost or timed out */
    REDIS_PIPE_STALE = -2,  /* lost a connection that had answered before (Redis restarted?):
                             * worth one more try on a new one */
    REDIS_PIPE_NOCONN = -3, /* no connection: connect failed (as the connect function said) */
};

/* A pipe; no connection is opened before the first command. The connections connect opens
 * must have their send and receive timeouts set (SO_SNDTIMEO, SO_RCVTIMEO: no byte for that long
 * fails the connection and every command waiting on it). */
struct redis_pipe *redis_pipe_new(redis_pipe_connect_fn connect);
/* Frees the pipe; no thread may be using it. */
void redis_pipe_free(struct redis_pipe *p);

/* Sends n commands in the protocol's form (sent together, in this order) and waits for their
 * n replies (error replies included). Returns REDIS_PIPE_OK with replies[] set, or a failure
 * with a message in err and no reply. */
int redis_pipe_run(struct redis_pipe *p, int n, const char *const *cmds, const int *lens,
                   redisReply **replies, char *err, size_t errlen);

#endif
