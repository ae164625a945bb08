/* offload.h - blocking work that must not hold a worker's event loop (private to libshop): in a
 * request's coroutine, the work runs on one of a few helper threads while the coroutine waits and
 * its loop serves the other requests; anywhere else it runs in place. A peer that hangs then
 * holds a helper, never the worker that answers the routes served from memory. */
#ifndef SHOP_OFFLOAD_H
#define SHOP_OFFLOAD_H

/* The most helper threads a process starts (on demand; none while nothing is offloaded). */
#define SHOP_OFFLOAD_HELPERS 8

/* Runs fn(arg), returning once it has run. fn must not touch the calling thread's state (its
 * thread-locals, its loop, the tracer's current span): it may run on another thread. */
void shop_offload(void (*fn)(void *), void *arg);

#endif
