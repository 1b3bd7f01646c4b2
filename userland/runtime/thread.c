/*
 * Threads in the root task's CSpace and VSpace (include/thread.h, README "Threads").
 */
#include <string.h>
#include <thread.h>

#include "runtime.h"

extern char _image_start[];

/* ---- slots ---- */

static seL4_CPtr next_free, end_free;
static int slots_ready;

seL4_CPtr slot_alloc_n(unsigned long n)
{
    if (!slots_ready) {
        seL4_BootInfo *bi = seL4_GetBootInfo();
        next_free = bi->empty.start;
        end_free = bi->empty.end;
        slots_ready = 1;
    }
    if (n == 0 || end_free - next_free < n) {
        return 0;
    }
    seL4_CPtr first = next_free;
    next_free += n;
    return first;
}

seL4_CPtr slot_alloc(void)
{
    return slot_alloc_n(1);
}

/* ---- threads ---- */

seL4_CPtr image_frame_cap(const void *vaddr)
{
    unsigned long base = (unsigned long)_image_start & ~4095UL;
    return seL4_GetBootInfo()->userImageFrames.start +
           ((unsigned long)vaddr - base) / 4096;
}

/*
 * The first code a new thread runs, with its TLS register already set: point libsel4 at
 * its own IPC buffer (a __thread variable), run the entry, and stop for good.
 */
static __attribute__((noreturn)) void thread_trampoline(struct thread *t)
{
    seL4_SetIPCBuffer(&t->storage->ipc_buffer);
    t->entry(t->arg);
    seL4_TCB_Suspend(t->tcb);
    for (;;) {
        seL4_Yield();
    }
}

seL4_Error thread_create(struct thread *t, struct thread_storage *storage,
                         seL4_CPtr untyped, const char *name, thread_entry_fn entry,
                         void *arg, seL4_Word priority)
{
    seL4_Error err;
    seL4_CPtr slot = slot_alloc();
    if (slot == 0) {
        return seL4_NotEnoughMemory;
    }
    if (capsule_tls_size() > sizeof(storage->tls)) {
        return seL4_RangeError;
    }
    t->tcb = slot;
    t->storage = storage;
    t->entry = entry;
    t->arg = arg;

    err = seL4_Untyped_Retype(untyped, seL4_TCBObject, 0, seL4_CapInitThreadCNode, 0, 0,
                              slot, 1);
    if (err != seL4_NoError) {
        return err;
    }
#if defined(CONFIG_KERNEL_MCS)
    /* MCS Configure names no fault endpoint (SetSpace and SetSchedParams do). */
    err = seL4_TCB_Configure(slot, seL4_CapInitThreadCNode, 0, seL4_CapInitThreadVSpace,
                             0, (seL4_Word)&storage->ipc_buffer,
                             image_frame_cap(&storage->ipc_buffer));
#else
    err = seL4_TCB_Configure(slot, 0, seL4_CapInitThreadCNode, 0, seL4_CapInitThreadVSpace,
                             0, (seL4_Word)&storage->ipc_buffer,
                             image_frame_cap(&storage->ipc_buffer));
#endif
    if (err != seL4_NoError) {
        return err;
    }

    seL4_UserContext regs;
    memset(&regs, 0, sizeof(regs));
    regs.pc = (seL4_Word)thread_trampoline;
    regs.sp = (seL4_Word)(storage->stack + sizeof(storage->stack));
    seL4_Word tp = (seL4_Word)capsule_tls_setup(storage->tls);
#if defined(__riscv)
    regs.a0 = (seL4_Word)t;
    regs.tp = tp;
    seL4_Word gp;
    __asm__ volatile("mv %0, gp" : "=r"(gp));
    regs.gp = gp;
#elif defined(__aarch64__)
    regs.x0 = (seL4_Word)t;
    regs.tpidr_el0 = tp;
#endif
    err = seL4_TCB_WriteRegisters(slot, 0, 0, sizeof(regs) / sizeof(seL4_Word), &regs);
    if (err != seL4_NoError) {
        return err;
    }
    err = seL4_TCB_SetPriority(slot, seL4_CapInitThreadTCB, priority);
    if (err != seL4_NoError) {
        return err;
    }
    seL4_DebugNameThread(slot, name);
    return seL4_NoError;
}

seL4_Error thread_start(struct thread *t)
{
    return seL4_TCB_Resume(t->tcb);
}
