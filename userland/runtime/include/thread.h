/*
 * capsule runtime: threads in the root task's own CSpace and VSpace.
 *
 * A thread is a TCB retyped from an untyped into a free root-CNode slot, sharing the
 * root task's CSpace and VSpace, with storage the caller provides statically: a stack,
 * a 1 KiB-aligned IPC buffer inside the image (the kernel reaches it through the image
 * frame cap that covers it) and a TLS area. Typical use:
 *
 *     static struct thread_storage storage;
 *     static struct thread worker;
 *
 *     thread_create(&worker, &storage, untyped, "worker", work, arg, 100);
 *     thread_start(&worker);          (seL4_TCB_Resume)
 *
 * The thread runs entry(arg) with its own TLS (so __thread variables, and
 * seL4_GetIPCBuffer(), are its own); if entry returns, the thread suspends itself.
 * See userland/runtime/README.md, "Threads".
 */
#ifndef CAPSULE_THREAD_H
#define CAPSULE_THREAD_H

#include <sel4/sel4.h>

/* ---- free root-CNode slots ---- */

/*
 * A bump allocator over bootinfo->empty: each call hands out the next empty slot of
 * the root CNode (a CPtr at full depth) and never takes one back. Returns 0 when the
 * region is used up (slot 0 is never empty, so 0 is not a valid answer).
 */
seL4_CPtr slot_alloc(void);

/* `n` consecutive empty slots; returns the first, or 0 if fewer than `n` are left. */
seL4_CPtr slot_alloc_n(unsigned long n);

/* ---- threads ---- */

#define THREAD_STACK_SIZE 8192
#define THREAD_TLS_SIZE 1024

/* Static storage for one thread; declare it `static` (it must be inside the image). */
struct thread_storage {
    seL4_IPCBuffer ipc_buffer __attribute__((aligned(1024)));
    char stack[THREAD_STACK_SIZE] __attribute__((aligned(16)));
    char tls[THREAD_TLS_SIZE] __attribute__((aligned(64)));
};

typedef void (*thread_entry_fn)(void *arg);

struct thread {
    seL4_CPtr tcb;               /* the TCB cap (root-CNode slot) */
    struct thread_storage *storage;
    thread_entry_fn entry;
    void *arg;
};

/*
 * Make a thread that will run entry(arg) at `priority` (at most the root task's MCP):
 * retype a TCB from `untyped` into slot_alloc(), Configure it with the root CSpace,
 * VSpace and `storage`'s IPC buffer, set its registers (pc, sp, argument, TLS, and gp
 * on RISC-V) with WriteRegisters, its priority with the root TCB as authority, and its
 * name. The thread is left Inactive: thread_start() runs it.
 * Returns seL4_NoError or the first failing invocation's error.
 */
seL4_Error thread_create(struct thread *t, struct thread_storage *storage,
                         seL4_CPtr untyped, const char *name, thread_entry_fn entry,
                         void *arg, seL4_Word priority);

/*
 * Fill a TLS block at `area` (64-byte aligned, THREAD_TLS_SIZE bytes suffice for
 * capsule's guests) from the image's TLS segment; returns the value for the thread's
 * TLS register (tp / TPIDR_EL0), e.g. for seL4_TCB_SetTLSBase.
 */
void *capsule_tls_setup(char *area);

/* seL4_TCB_Resume on the thread. */
seL4_Error thread_start(struct thread *t);

/* The frame cap (from bootinfo->userImageFrames) of the image page holding `vaddr`. */
seL4_CPtr image_frame_cap(const void *vaddr);

#endif
