/* coswitch.h - the context switch the coroutines of libshop/loop.c (and the bare responder's
 * prototype, bench/bare) run on: on x86_64 a switch that saves only the callee-saved registers and
 * the SSE/x87 control words (no system call), elsewhere, or built with -DSHOP_UCONTEXT, glibc's
 * ucontext (a sigprocmask system call per switch). */
#ifndef SHOP_COSWITCH_H
#define SHOP_COSWITCH_H

#include <stddef.h>

#if defined(__x86_64__) && !defined(SHOP_UCONTEXT)
typedef struct {
    void *sp;
} shop_ctx;
#else
#include <ucontext.h>
typedef ucontext_t shop_ctx;
#endif

/* Prepares ctx so that the first switch to it runs fn (which must never return) on the stack
 * [stack, stack + size). */
void shop_ctx_init(shop_ctx *ctx, char *stack, size_t size, void (*fn)(void));
/* Saves the running context in save and continues in to. */
void shop_ctx_switch(shop_ctx *save, shop_ctx *to);

#endif
