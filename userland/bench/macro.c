/*
 * Benchmark: a macro workload in the manner of seL4's sel4test, whose driver builds a
 * process from untyped memory for every test: each round the root task spawns a child
 * process with the process library (CNode, VSpace with an ASID, TCB, the ELF of
 * macro_child.c loaded page by page into fresh frames, stack, IPC buffer, bootinfo),
 * serves it as its endpoint partner and its fault handler, and tears it down by revoking
 * the untyped it was built from, so that the next round retypes (and the kernel zeroes)
 * the same memory again.
 *
 * Parameters (bench.h):
 *   [0] ROUNDS   children spawned, run and torn down               (phase "macro")
 *   [1] CALLS    Call / ReplyRecv round trips per child; every odd one grants a cap,
 *                which the root task receives into a fixed slot and deletes
 *   [2] PAGES    pages of its .bss each child writes and reads back (at most
 *                MACRO_MAX_PAGES)
 *   [3] UT_BITS  size of the untyped each child is built from (2^UT_BITS bytes)
 *
 * A round: process_create from the child untyped, the endpoint minted into the child,
 * Resume; then the root task receives on the endpoint until the child says it is done:
 * each Call is answered with MR0 + 1; the child's one VMFault (a write at
 * MACRO_FAULT_VA) is answered by retyping a frame, mapping it there in the child's
 * VSpace (page tables as needed) and replying, so that the write runs again; finally
 * CNode_Revoke of the child untyped deletes every object of the child. The root task
 * checks what the child reports and counts calls, caps and faults; a round that is not
 * as expected ends the program with "@fail".
 *
 * Every round retypes a few dozen caps into fresh root-CNode slots (the runtime's slot
 * allocator never takes one back): the image's root_cnode_bits must leave room for
 * ROUNDS times that (about 40 per round with the default child).
 */
#include "bench.h"
#include "macro.h"

#include <process.h>

CAPSULE_EMBED_ELF(macro_child)

enum { ROUNDS, CALLS, PAGES, UT_BITS };

volatile seL4_Word bench_params[BENCH_PARAMS] = {100, 8, 4, 19};

#if defined(__riscv)
#define OBJ_4K_PAGE seL4_RISCV_4K_Page
#else
#define OBJ_4K_PAGE seL4_ARM_SmallPageObject
#endif

/* seL4's VMFault message: IP, Addr, PrefetchFault, FSR. */
#define VM_FAULT_ADDR 1

static seL4_CPtr ep, recv_slot, child_ut;

static void expect(int ok, const char *what, seL4_Word seen)
{
    if (!ok) {
        bench_fail(what, seen);
    }
}

/* The reply to the child's VMFault at `address`: a fresh frame mapped there. */
static seL4_MessageInfo_t map_fault_page(struct process *p, seL4_Word address)
{
    seL4_CPtr frame = bench_slots(1);
    BENCH_OK(seL4_Untyped_Retype(child_ut, OBJ_4K_PAGE, 0, ROOT, 0, 0, frame, 1));
    BENCH_OK(process_map_page(child_ut, p->vspace, frame, address & ~4095ul, seL4_ReadWrite,
                              0));
    return seL4_MessageInfo_new(0, 0, 0, 0);
}

/* One child's life: spawn, serve until it is done, revoke its untyped. */
static void round_trip_child(void)
{
    struct process p;
    unsigned long n_calls = bench_params[CALLS];
    seL4_Word args[PROCESS_NUM_ARGS] = {n_calls, bench_params[PAGES], MACRO_FAULT_VA, 0};
    BENCH_OK(process_create(&p, child_ut, capsule_elf_macro_child, capsule_elf_macro_child_size,
                            "macro child", 100, args, ep, MACRO_FAULT_BADGE));
    BENCH_OK(process_give_cap(&p, MACRO_SLOT_PARENT, ep, seL4_AllRights, MACRO_CHILD_BADGE));
    BENCH_OK(process_start(&p));

    unsigned long calls = 0, caps = 0, faults = 0;
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(ep, &badge);
    for (;;) {
        seL4_Word label = seL4_MessageInfo_get_label(info);
        seL4_MessageInfo_t reply;
        if (badge == MACRO_FAULT_BADGE) {
            expect(label == seL4_Fault_VMFault, "the child's fault is not a VMFault", label);
            faults++;
            reply = map_fault_page(&p, seL4_GetMR(VM_FAULT_ADDR));
        } else if (label == MACRO_LABEL_DONE) {
            expect(seL4_GetMR(0) == 0, "the child failed at step", seL4_GetMR(0));
            break;
        } else {
            expect(badge == MACRO_CHILD_BADGE && seL4_GetMR(0) == calls,
                   "unexpected message from the child, badge", badge);
            if (seL4_MessageInfo_get_extraCaps(info) == 1) {
                caps++;
                BENCH_OK(seL4_CNode_Delete(ROOT, recv_slot, DEPTH));
            }
            seL4_SetMR(0, ++calls);
            reply = seL4_MessageInfo_new(0, 0, 0, 1);
        }
        info = seL4_ReplyRecv(ep, reply, &badge);
    }
    expect(calls == n_calls, "round trips done", calls);
    expect(caps == n_calls / 2, "caps received", caps);
    expect(faults == 1, "faults handled", faults);
    BENCH_OK(seL4_CNode_Revoke(ROOT, child_ut, DEPTH));
}

int main(void)
{
    seL4_CPtr pool = bench_pool();
    ep = bench_objects(pool, seL4_EndpointObject, 0, 1);
    child_ut = bench_objects(pool, seL4_UntypedObject, bench_params[UT_BITS], 1);
    recv_slot = bench_slots(1);
    seL4_SetCapReceivePath(ROOT, recv_slot, DEPTH);

    unsigned long n = bench_params[ROUNDS], i;
    bench_begin("macro");
    for (i = 0; i < n; i++) {
        round_trip_child();
    }
    bench_end("macro", i);
    return 0;
}
