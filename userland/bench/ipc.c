/*
 * Benchmark: Call / ReplyRecv round trips between the root task and a server thread in
 * the same address space, without and with one capability transferred, and the null
 * system call, optionally in a system populated with extra threads and caps.
 *
 * Parameters (bench.h):
 *   [0] ROUNDS        round trips with an empty message          (phase "rt")
 *   [1] CAP_ROUNDS    round trips that each transfer one cap     (phase "rt_cap")
 *   [2] NULL_CALLS    seL4_Yield with nothing else runnable      (phase "null")
 *   [3] EXTRA_THREADS TCBs besides the two above: the first half left suspended
 *                     (Inactive), the rest blocked receiving on an idle endpoint
 *   [4] EXTRA_CAPS    copies of a cap filling root-CNode slots (the image's
 *                     root_cnode_bits must leave room)
 *   [5] SIGNALS       seL4_Signal to a notification a higher-priority thread waits on
 *                                                                (phase "signal")
 *   [6] OTHER_ROUNDS  round trips with a server in an address space of its own
 *                                                                (phase "rt_other")
 *
 * Both threads run at priority 255, so each Call switches straight to the server and
 * each ReplyRecv straight back: a round trip is two kernel entries and two switches.
 *
 * The cap round trip does what seL4's own cap-transfer measurements do: the client
 * grants a cap (to an idle endpoint, so that it is not unwrapped as a badge) with each
 * Call, the server receives it into a fixed slot and deletes it (seL4_CNode_Delete, a
 * third kernel entry) before replying. After the phase the client checks that the
 * server received and deleted exactly CAP_ROUNDS caps.
 *
 * The other address space maps copies of the root task's image frame caps at the same
 * addresses (the same physical pages, so the server's stack, IPC buffer and the
 * counters are the runtime's static storage as before), and every switch changes
 * address space.
 *
 * Signal / Wait runs last: the root task lowers itself to priority 100 below a waiter at
 * 200, so each Signal wakes the waiter, which runs at once, counts and waits again: two
 * kernel entries and two switches per signal. The root task checks the count after.
 */
#include "bench.h"

enum { ROUNDS, CAP_ROUNDS, NULL_CALLS, EXTRA_THREADS, EXTRA_CAPS, SIGNALS, OTHER_ROUNDS };

volatile seL4_Word bench_params[BENCH_PARAMS] = {20000, 10000, 20000, 0, 0, 20000, 20000};

#define MAX_EXTRA_THREADS 4096

#if defined(__riscv)
#define OBJ_PAGE_TABLE seL4_RISCV_PageTableObject
#define OBJ_VSPACE seL4_RISCV_PageTableObject
#define PAGE_MAP seL4_RISCV_Page_Map
#define PAGE_TABLE_MAP seL4_RISCV_PageTable_Map
#define ASID_ASSIGN seL4_RISCV_ASIDPool_Assign
#define VM_ATTRIBUTES seL4_RISCV_Default_VMAttributes
#else
#define OBJ_PAGE_TABLE seL4_ARM_PageTableObject
#define OBJ_VSPACE seL4_ARM_VSpaceObject
#define PAGE_MAP seL4_ARM_Page_Map
#define PAGE_TABLE_MAP seL4_ARM_PageTable_Map
#define ASID_ASSIGN seL4_ARM_ASIDPool_Assign
#define VM_ATTRIBUTES seL4_ARM_Default_VMAttributes
#endif

extern char _image_start[];

static seL4_CPtr ep, far_ep, idle_ep, recv_slot, ntfn;
static volatile unsigned long caps_received, caps_deleted, threads_blocked, wakeups;

static struct thread_storage server_storage, far_storage, waiter_storage;
static struct thread server, far_server, waiter;

/*
 * Extra blocked threads share one storage: each runs only until its first Recv, which
 * never returns, so what a later one writes over the shared stack is never read back.
 */
static struct thread_storage shared_storage;
static struct thread extra[MAX_EXTRA_THREADS];

/* The server loop on the endpoint `arg` points to. */
static void serve(void *arg)
{
    seL4_CPtr on = *(seL4_CPtr *)arg;
    seL4_SetCapReceivePath(ROOT, recv_slot, DEPTH);
    seL4_MessageInfo_t reply = seL4_MessageInfo_new(0, 0, 0, 0);
    seL4_MessageInfo_t info = seL4_RecvWithMRs(on, 0, 0, 0, 0, 0);
    for (;;) {
        if (seL4_MessageInfo_get_extraCaps(info) == 1) {
            caps_received++;
            if (seL4_CNode_Delete(ROOT, recv_slot, DEPTH) == seL4_NoError) {
                caps_deleted++;
            }
        }
        info = seL4_ReplyRecvWithMRs(on, reply, 0, 0, 0, 0, 0);
    }
}

static void wait_forever(void *arg)
{
    (void)arg;
    for (;;) {
        seL4_Wait(ntfn, 0);
        wakeups++;
    }
}

static void block_forever(void *arg)
{
    (void)arg;
    threads_blocked++;
    seL4_Recv(idle_ep, 0);
}

/* A new VSpace mapping the root task's whole image at its own addresses. */
static seL4_CPtr image_copy_vspace(seL4_CPtr pool)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_CPtr vspace = bench_objects(pool, OBJ_VSPACE, 0, 1);
    BENCH_OK(ASID_ASSIGN(seL4_CapInitThreadASIDPool, vspace));
    seL4_Word base = (seL4_Word)_image_start & ~4095UL;
    for (seL4_CPtr f = bi->userImageFrames.start; f < bi->userImageFrames.end; f++) {
        seL4_Word va = base + (f - bi->userImageFrames.start) * 4096;
        seL4_CPtr copy = bench_slots(1);
        BENCH_OK(seL4_CNode_Copy(ROOT, copy, DEPTH, ROOT, f, DEPTH, seL4_AllRights));
        seL4_Error err;
        while ((err = PAGE_MAP(copy, vspace, va, seL4_ReadWrite, VM_ATTRIBUTES)) ==
               seL4_FailedLookup) {
            BENCH_OK(PAGE_TABLE_MAP(bench_objects(pool, OBJ_PAGE_TABLE, 0, 1), vspace, va,
                                    VM_ATTRIBUTES));
        }
        BENCH_OK(err);
    }
    return vspace;
}

static void populate(seL4_CPtr pool)
{
    unsigned long threads = bench_params[EXTRA_THREADS], caps = bench_params[EXTRA_CAPS];
    if (threads > MAX_EXTRA_THREADS) {
        bench_fail("EXTRA_THREADS above MAX_EXTRA_THREADS", threads);
    }
    unsigned long suspended = threads / 2;
    if (suspended) {
        bench_objects(pool, seL4_TCBObject, 0, suspended);
    }
    for (unsigned long i = suspended; i < threads; i++) {
        BENCH_OK(thread_create(&extra[i], &shared_storage, pool, "blocked", block_forever, 0,
                               255));
        BENCH_OK(thread_start(&extra[i]));
    }
    seL4_Yield(); /* every blocked thread runs to its Recv, then the root task again */
    if (threads_blocked != threads - suspended) {
        bench_fail("extra threads did not all block", threads_blocked);
    }
    if (caps) {
        seL4_CPtr first = bench_slots(caps);
        for (unsigned long i = 0; i < caps; i++) {
            BENCH_OK(seL4_CNode_Copy(ROOT, first + i, DEPTH, ROOT, idle_ep, DEPTH,
                                     seL4_AllRights));
        }
    }
}

int main(void)
{
    seL4_CPtr pool = bench_pool();
    ep = bench_objects(pool, seL4_EndpointObject, 0, 1);
    idle_ep = bench_objects(pool, seL4_EndpointObject, 0, 1);
    recv_slot = bench_slots(1);
    populate(pool);

    BENCH_OK(thread_create(&server, &server_storage, pool, "server", serve, &ep, 255));
    BENCH_OK(thread_start(&server));
    seL4_Yield(); /* the server runs to its first Recv */

    unsigned long n = bench_params[NULL_CALLS], i;
    bench_begin("null");
    for (i = 0; i < n; i++) {
        seL4_Yield();
    }
    bench_end("null", i);

    seL4_MessageInfo_t empty = seL4_MessageInfo_new(0, 0, 0, 0);
    n = bench_params[ROUNDS];
    bench_begin("rt");
    for (i = 0; i < n; i++) {
        seL4_CallWithMRs(ep, empty, 0, 0, 0, 0);
    }
    bench_end("rt", i);

    seL4_MessageInfo_t one_cap = seL4_MessageInfo_new(0, 0, 1, 0);
    seL4_SetCap(0, idle_ep);
    n = bench_params[CAP_ROUNDS];
    bench_begin("rt_cap");
    for (i = 0; i < n; i++) {
        seL4_CallWithMRs(ep, one_cap, 0, 0, 0, 0);
    }
    bench_end("rt_cap", i);
    if (caps_received != n || caps_deleted != n) {
        printf("@fail server received %lu caps and deleted %lu, expected %lu\n",
               caps_received, caps_deleted, n);
        return 1;
    }

    n = bench_params[OTHER_ROUNDS];
    if (n) {
        far_ep = bench_objects(pool, seL4_EndpointObject, 0, 1);
        BENCH_OK(thread_create(&far_server, &far_storage, pool, "far server", serve, &far_ep,
                               255));
        BENCH_OK(seL4_TCB_SetSpace(far_server.tcb, 0, ROOT, 0, image_copy_vspace(pool), 0));
        BENCH_OK(thread_start(&far_server));
        seL4_Yield(); /* the far server runs to its first Recv */
        bench_begin("rt_other");
        for (i = 0; i < n; i++) {
            seL4_CallWithMRs(far_ep, empty, 0, 0, 0, 0);
        }
        bench_end("rt_other", i);
    }

    n = bench_params[SIGNALS];
    if (n) {
        ntfn = bench_objects(pool, seL4_NotificationObject, 0, 1);
        BENCH_OK(thread_create(&waiter, &waiter_storage, pool, "waiter", wait_forever, 0, 200));
        BENCH_OK(thread_start(&waiter));
        /* Below the waiter: it runs to its first Wait before this call returns. */
        BENCH_OK(seL4_TCB_SetPriority(seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 100));
        bench_begin("signal");
        for (i = 0; i < n; i++) {
            seL4_Signal(ntfn);
        }
        bench_end("signal", i);
        if (wakeups != n) {
            printf("@fail the waiter woke %lu times for %lu signals\n", wakeups, n);
            return 1;
        }
    }
    return 0;
}
