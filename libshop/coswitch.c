/* coswitch.c - the coroutines' context switch (coswitch.h). */
#include "libshop/coswitch.h"

#include <stdint.h>

#if defined(__x86_64__) && !defined(SHOP_UCONTEXT)
/* shop_co_switch(save, to): pushes the callee-saved registers and the SSE/x87 control words,
 * stores the stack pointer in *save, loads to and pops the same from there. */
void shop_co_switch(void **save, void *to);
__asm__(".text\n"
        ".globl shop_co_switch\n"
        ".type shop_co_switch,@function\n"
        "shop_co_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size shop_co_switch, .-shop_co_switch\n"
        ".section .note.GNU-stack,\"\",@progbits\n"
        ".text\n");

void shop_ctx_switch(shop_ctx *save, shop_ctx *to)
{
    shop_co_switch(&save->sp, to->sp);
}

void shop_ctx_init(shop_ctx *ctx, char *stack, size_t size, void (*fn)(void))
{
    uint64_t *sp = (uint64_t *)(((uintptr_t)stack + size) & ~(uintptr_t)15);
    *--sp = 0;                       /* fn's return address: it never returns */
    *--sp = (uint64_t)(uintptr_t)fn; /* where the switch's ret goes first */
    for (int i = 0; i < 6; i++)
        *--sp = 0;             /* rbp rbx r12 r13 r14 r15 */
    *--sp = 0x037F00001F80ULL; /* MXCSR and the x87 control word, their defaults */
    ctx->sp = sp;
}
#else
void shop_ctx_switch(shop_ctx *save, shop_ctx *to)
{
    swapcontext(save, to);
}

void shop_ctx_init(shop_ctx *ctx, char *stack, size_t size, void (*fn)(void))
{
    getcontext(ctx);
    ctx->uc_stack.ss_sp = stack;
    ctx->uc_stack.ss_size = size;
    ctx->uc_link = NULL;
    makecontext(ctx, fn, 0);
}
#endif
