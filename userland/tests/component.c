/*
 * A server component that the host captures, destroys and restores (issue #19; driven by
 * tests/guest/test_component_guests.py and the `capsule component` CLI test).
 *
 * The root task builds a server with a CSpace of its own: a 16-slot CNode whose caps the
 * server names by slot number (its TCB's CSpace root has a 60-bit guard), holding a copy
 * of the clients' endpoint (made by the root task: outside the server), a badged cap
 * minted from the root task's endpoint and a copy of that (a derivation tree), a
 * notification and a badged child, a frame mapped at SERVER_DATA in the root task's
 * VSpace (which the server shares) where it keeps one counter per badge, an untyped with
 * an endpoint retyped from it and a badged child of that, its own TCB cap and its CNode's
 * cap. Every object comes from the untyped `server_ut`, and every original cap is moved
 * into the server's CNode, so the server owns them all. Two client threads of the root
 * task Call the endpoint with badges 1 and 2.
 *
 * COMP0001: the clients' first two calls each are answered (counters 1 and 2); then the
 *           root task stops in component_sync(1) with the server blocked in Recv and the
 *           clients waiting on a notification: the host captures the server there.
 * COMP0002: the root task revokes `server_ut`: the server and everything it owned are
 *           gone (its frame unmapped); component_sync(2): the host restores the server
 *           from `restore_ut` and sets host_restored.
 * COMP0003: the clients call again: the restored server answers with counters 3 and 4
 *           (its frame's bytes came back), the restored server's objects lie in
 *           `restore_ut`, and revoking that tears the restored server down.
 *
 * Run alone (no host), COMP0003 fails saying no host restored the server.
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 3
#include "threads_util.h"

#if defined(__riscv)
#define Page_Map seL4_RISCV_Page_Map
#define PageTable_Map seL4_RISCV_PageTable_Map
#define ATTR seL4_RISCV_Default_VMAttributes
#define OBJ_4K seL4_RISCV_4K_Page
#define OBJ_PT seL4_RISCV_PageTableObject
#else
#define Page_Map seL4_ARM_Page_Map
#define PageTable_Map seL4_ARM_PageTable_Map
#define ATTR seL4_ARM_Default_VMAttributes
#define OBJ_4K seL4_ARM_SmallPageObject
#define OBJ_PT seL4_ARM_PageTableObject
#endif

#define ROOT seL4_CapInitThreadCNode
#define SERVER_RADIX 4
#define SERVER_DATA 0x50000000ul

/* The server's CSpace, by slot (its CPtrs). */
#define S_EP 1
#define S_EP_BADGED 2
#define S_EP_COPY 3
#define S_NTFN 4
#define S_NTFN_BADGED 5
#define S_FRAME 6
#define S_TCB 7
#define S_UT 8
#define S_UT_EP 9
#define S_UT_EP_BADGED 10
#define S_CNODE 11

/* What the host reads (root-task CPtrs), and what it writes once it restored the server. */
struct component_info {
    seL4_Word ep;         /* the clients' endpoint */
    seL4_Word ipc_frame;  /* the image frame cap of the server's IPC buffer */
    seL4_Word server_ut;  /* what the server is made from */
    seL4_Word restore_ut; /* what the host restores it from */
};
volatile struct component_info component_info;
volatile seL4_Word host_restored;

static seL4_CPtr ep, go, client_cap[2];
static volatile seL4_Word replies[2][4];
static volatile int clients_done;

/* The host stops here (a breakpoint on the symbol); `point` says which stop it is. */
__attribute__((noinline)) void component_sync(seL4_Word point)
{
    __asm__ volatile("" : : "r"(point) : "memory");
}

static void server_main(void *arg)
{
    (void)arg;
    volatile seL4_Word *counts = (volatile seL4_Word *)SERVER_DATA;
    for (;;) {
        seL4_Word badge = 0;
        seL4_Recv(S_EP, &badge);
        seL4_Word n = ++counts[badge & 7];
        seL4_SetMR(0, badge);
        seL4_SetMR(1, n);
        seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 2));
    }
}

static void client_main(void *arg)
{
    int i = (int)(seL4_Word)arg;
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 2; k++) {
            seL4_SetMR(0, (seL4_Word)k);
            seL4_Call(client_cap[i], seL4_MessageInfo_new(0, 0, 0, 1));
            replies[i][round * 2 + k] = seL4_GetMR(1);
            printf("client %d: badge %lu, call %lu\n", i + 1, (unsigned long)seL4_GetMR(0),
                   (unsigned long)seL4_GetMR(1));
        }
        if (round == 0) {
            seL4_Wait(go, NULL);
        }
    }
    clients_done++;
}

/* Map `frame` at `vaddr` in the root VSpace, adding page tables from `pool` as needed. */
static seL4_Error map_in_root(seL4_CPtr frame, seL4_Word vaddr)
{
    for (int level = 0; level < 4; level++) {
        seL4_Error e = Page_Map(frame, seL4_CapInitThreadVSpace, vaddr, seL4_ReadWrite, ATTR);
        if (e != seL4_FailedLookup) {
            return e;
        }
        seL4_CPtr pt = alloc_slot();
        e = seL4_Untyped_Retype(pool, OBJ_PT, 0, ROOT, 0, 0, pt, 1);
        if (e == seL4_NoError) {
            e = PageTable_Map(pt, seL4_CapInitThreadVSpace, vaddr, ATTR);
        }
        if (e != seL4_NoError) {
            return e;
        }
    }
    return seL4_FailedLookup;
}

/* Move the root-CNode cap `src` into the server's CNode `cnode` at `slot`. */
static seL4_Error move_in(seL4_CPtr cnode, seL4_Word slot, seL4_CPtr src)
{
    return seL4_CNode_Move(cnode, slot, SERVER_RADIX, ROOT, src, seL4_WordBits);
}

static int build_and_serve(void)
{
    seL4_CPtr a, b;
    EXPECT_OK(make_objects(pool, seL4_UntypedObject, 16, 2, &a));
    b = a + 1;
    ep = alloc_slot();
    go = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, 0, 0, ep, 1));
    EXPECT_OK(seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT, 0, 0, go, 1));

    /* The server's objects, all from `a`. */
    seL4_CPtr cnode = alloc_slot(), ntfn = alloc_slot(), frame = alloc_slot(), ut = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(a, seL4_CapTableObject, SERVER_RADIX, ROOT, 0, 0, cnode, 1));
    EXPECT_OK(seL4_Untyped_Retype(a, seL4_NotificationObject, 0, ROOT, 0, 0, ntfn, 1));
    EXPECT_OK(seL4_Untyped_Retype(a, OBJ_4K, 0, ROOT, 0, 0, frame, 1));
    EXPECT_OK(seL4_Untyped_Retype(a, seL4_UntypedObject, 12, ROOT, 0, 0, ut, 1));
    EXPECT_OK(map_in_root(frame, SERVER_DATA));
    memset((void *)SERVER_DATA, 0, 64);
    memcpy((char *)SERVER_DATA + 64, "the server's frame", 19);

    /* The server thread: made from `a`, then given the server's CSpace. */
    EXPECT_OK(thread_create(&threads[0], &thread_slot_storage[0], a, "server", server_main, 0,
                            150));
    seL4_CPtr tcb = threads[0].tcb;
    seL4_Word ipc = (seL4_Word)&thread_slot_storage[0].ipc_buffer;
    EXPECT_OK(seL4_TCB_Configure(tcb, 0, cnode, seL4_CNode_CapData_new(0, 60).words[0],
                                 seL4_CapInitThreadVSpace, 0, ipc, image_frame_cap((void *)ipc)));

    /* Its CSpace: caps to the clients' endpoint, badged ones, a derivation tree. */
    EXPECT_OK(seL4_CNode_Copy(cnode, S_EP, SERVER_RADIX, ROOT, ep, seL4_WordBits,
                              seL4_AllRights));
    EXPECT_OK(seL4_CNode_Mint(cnode, S_EP_BADGED, SERVER_RADIX, ROOT, ep, seL4_WordBits,
                              seL4_ReadWrite, 0x11));
    EXPECT_OK(seL4_CNode_Copy(cnode, S_EP_COPY, SERVER_RADIX, cnode, S_EP_BADGED, SERVER_RADIX,
                              seL4_ReadWrite));
    EXPECT_OK(seL4_Untyped_Retype(ut, seL4_EndpointObject, 0, cnode, 0, 0, S_UT_EP, 1));
    EXPECT_OK(seL4_CNode_Mint(cnode, S_UT_EP_BADGED, SERVER_RADIX, cnode, S_UT_EP, SERVER_RADIX,
                              seL4_AllRights, 0x22));
    EXPECT_OK(move_in(cnode, S_NTFN, ntfn));
    EXPECT_OK(seL4_CNode_Mint(cnode, S_NTFN_BADGED, SERVER_RADIX, cnode, S_NTFN, SERVER_RADIX,
                              seL4_AllRights, 0x5));
    EXPECT_OK(move_in(cnode, S_FRAME, frame));
    EXPECT_OK(move_in(cnode, S_UT, ut));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(move_in(cnode, S_TCB, tcb));
    EXPECT_OK(move_in(cnode, S_CNODE, cnode)); /* last: the root task lets go of it */

    /* The clients, in the root task's CSpace, with badges 1 and 2. */
    for (int i = 0; i < 2; i++) {
        client_cap[i] = alloc_slot();
        EXPECT_OK(seL4_CNode_Mint(ROOT, client_cap[i], seL4_WordBits, ROOT, ep, seL4_WordBits,
                                  seL4_AllRights, (seL4_Word)(i + 1)));
        EXPECT_OK(make(i + 1, i ? "client2" : "client1", client_main, (void *)(seL4_Word)i, 100));
        EXPECT_OK(thread_start(&threads[i + 1]));
    }
    component_info.ep = ep;
    component_info.ipc_frame = image_frame_cap((void *)ipc);
    component_info.server_ut = a;
    component_info.restore_ut = b;

    EXPECT_OK(let_run());
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(replies[i][0], 1);
        EXPECT_EQ(replies[i][1], 2);
    }
    return 0;
}

static int destroy(void)
{
    component_sync(1); /* the host captures the server here */
    EXPECT_OK(seL4_CNode_Revoke(ROOT, component_info.server_ut, seL4_WordBits));
    EXPECT_OK(seL4_CNode_Delete(ROOT, threads[0].tcb, seL4_WordBits)); /* already gone */
    EXPECT_EMPTY(threads[0].tcb);
    component_sync(2); /* the host restores it here */
    return 0;
}

static int restored_server_answers(void)
{
    if (!host_restored) {
        return fail("no host restored the server (run it under the host test)");
    }
    seL4_Signal(go);
    seL4_Signal(go);
    EXPECT_OK(let_run());
    EXPECT_EQ(clients_done, 2);
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(replies[i][2], 3);
        EXPECT_EQ(replies[i][3], 4);
    }
    if (strcmp((const char *)SERVER_DATA + 64, "the server's frame") != 0) {
        return fail("the restored frame lost its bytes");
    }
    /* Revoking what it was restored from tears the restored server down. */
    EXPECT_OK(seL4_CNode_Revoke(ROOT, component_info.restore_ut, seL4_WordBits));
    component_sync(3);
    return 0;
}

static const struct check checks[] = {
    {"COMP0001", "a server with its own CSpace answers two clients", build_and_serve},
    {"COMP0002", "revoking its untyped destroys the server", destroy},
    {"COMP0003", "the restored server answers the same clients", restored_server_answers},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
