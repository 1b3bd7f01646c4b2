/*
 * Capability pages (capsule's extension, not seL4; README "Extensions beyond seL4"):
 * page-sized nodes of capability slots, addressed like pages. The image turns the
 * extension on (userland/build.py). The checks:
 *
 *   CAPPGG0001 a server hands a pool of capabilities to two clients by mapping one
 *              capability page read-only into their address spaces; each client loads
 *              a notification and an endpoint from it, signals and reports through
 *              them, and cannot store into the pool (cappage_client.c)
 *   CAPPGG0002 a capability stack beside the data stack: push three capabilities at
 *              decreasing addresses, pop them (exchange into empty slots) in reverse
 *   CAPPGG0003 weak access: through a weak mapping a CNode capability comes out
 *              read-only and weak (nothing deleted through it, an endpoint copied
 *              out of it is null), an endpoint capability comes out null
 *   CAPPGG0004 type faults: a thread's data read of a capability page, then its
 *              capability load from a data page, then its data write to the
 *              capability page put back there, each reach its fault handler
 *              (address, access kind, expected type), which maps what was expected
 *              there and resumes it; the read, the load and the write then succeed
 *
 * Output and exit status: see checks.h.
 */
#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 1
#include "threads_util.h"

#include <process.h>
#include <sel4/gen/capsule_cap_page.h>
#include <string.h>

CAPSULE_EMBED_ELF(cappage_client)

#define VSPACE seL4_CapInitThreadVSpace
#define RADIX capsule_CapPageRadix
#define POOL_VA 0x61000000ul
#define STACK_VA 0x62000000ul
#define WEAK_RW_VA 0x63000000ul
#define WEAK_VA 0x63001000ul
#define FAULT_VA 0x64000000ul
#define FAULT_BADGE 0x100
#define NTFN_BADGE 0x11
#define SERVER_BADGE 0x22

#if defined(__riscv)
#define Page_Unmap seL4_RISCV_Page_Unmap
#else
#define Page_Unmap seL4_ARM_Page_Unmap
#endif

/* A fresh capability page in a root slot. */
static seL4_Error make_page(seL4_CPtr *page)
{
    return make_objects(pool, capsule_CapPageObject, 0, 1, page);
}

/* ---- CAPPGG0001: a pool of capabilities shared read-only ---- */

static int pool_shared_read_only(void)
{
    seL4_CPtr page, ntfn, server_ep, slot = alloc_slot();
    EXPECT_OK(make_page(&page));
    EXPECT_OK(make_objects(pool, seL4_NotificationObject, 0, 1, &ntfn));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &server_ep));
    EXPECT_OK(capsule_CapPage_Map(page, VSPACE, POOL_VA, 0));
    /* The server fills the pool through its own read-write mapping. */
    EXPECT_OK(seL4_CNode_Mint(ROOT, slot, DEPTH, ROOT, ntfn, DEPTH, seL4_AllRights, NTFN_BADGE));
    EXPECT_OK(capsule_VSpace_CapStore(VSPACE, POOL_VA + 32 * 1, ROOT, slot, DEPTH));
    EXPECT_OK(seL4_CNode_Delete(ROOT, slot, DEPTH));
    EXPECT_OK(seL4_CNode_Mint(ROOT, slot, DEPTH, ROOT, server_ep, DEPTH, seL4_AllRights,
                              SERVER_BADGE));
    EXPECT_OK(capsule_VSpace_CapStore(VSPACE, POOL_VA + 32 * 2, ROOT, slot, DEPTH));
    static struct process clients[2];
    for (seL4_Word i = 0; i < 2; i++) {
        struct process *p = &clients[i];
        seL4_Word args[PROCESS_NUM_ARGS] = {i + 1, 0, 0, 0};
        seL4_CPtr copy = alloc_slot();
        EXPECT_OK(process_create(p, pool, capsule_elf_cappage_client,
                                 capsule_elf_cappage_client_size, "client", 100, args,
                                 server_ep, FAULT_BADGE | i));
        /* A mapping is per cap, as a frame's: each client's is a copy, read-only. */
        EXPECT_OK(seL4_CNode_Copy(ROOT, copy, DEPTH, ROOT, page, DEPTH, seL4_AllRights));
        EXPECT_OK(capsule_CapPage_Map(copy, p->vspace, POOL_VA, capsule_CapPageReadOnly));
        EXPECT_OK(process_start(p));
    }
    seL4_Word badge = 0, seen = 0;
    for (int i = 0; i < 2; i++) {
        seL4_MessageInfo_t info = seL4_Recv(server_ep, &badge);
        EXPECT_EQ(badge, SERVER_BADGE);
        EXPECT_EQ(seL4_MessageInfo_get_label(info), 0);
        EXPECT_EQ(seL4_GetMR(0), 0);
        EXPECT_EQ(seL4_GetMR(1), seL4_IllegalOperation);
        seen |= 1ul << seL4_GetMR(2);
    }
    EXPECT_EQ(seen, 0x6);
    seL4_Wait(ntfn, &badge);
    EXPECT_EQ(badge, NTFN_BADGE);
    /* Nothing was stored: slot 5 of the pool is still empty. */
    EXPECT_ERR(capsule_VSpace_CapLoad(VSPACE, POOL_VA + 32 * 5, ROOT, slot, DEPTH),
               seL4_FailedLookup);
    return 0;
}

/* ---- CAPPGG0002: a capability stack ---- */

static seL4_Word csp;

static seL4_Error push(seL4_CPtr slot)
{
    csp -= 32;
    return capsule_VSpace_CapStore(VSPACE, csp, ROOT, slot, DEPTH);
}

/* Pop into the empty slot `slot`: an exchange with it moves the cap out. */
static seL4_Error pop(seL4_CPtr slot)
{
    seL4_Error e = capsule_VSpace_CapExchange(VSPACE, csp, ROOT, slot, DEPTH);
    csp += 32;
    return e;
}

static int capability_stack(void)
{
    seL4_CPtr page, ep, ntfn, frame, out = alloc_slots(3);
    seL4_Word data[4];
    EXPECT_OK(make_page(&page));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_OK(make_objects(pool, seL4_NotificationObject, 0, 1, &ntfn));
    EXPECT_OK(make_objects(pool, OBJ_4K_PAGE, 0, 1, &frame));
    EXPECT_OK(capsule_CapPage_Map(page, VSPACE, STACK_VA, 0));
    csp = STACK_VA + 4096;
    data[0] = csp; /* the data stack keeps words, the capability stack caps */
    EXPECT_OK(push(ep));
    EXPECT_OK(push(ntfn));
    EXPECT_OK(push(frame));
    EXPECT_EQ(csp, STACK_VA + 4096 - 3 * 32);
    EXPECT_OK(pop(out));
    EXPECT_OK(pop(out + 1));
    EXPECT_OK(pop(out + 2));
    EXPECT_EQ(csp, data[0]);
    EXPECT_TAG(out, CAPSULE_CAPTAG_FRAME_CAP);
    EXPECT_TAG(out + 1, CAPSULE_CAPTAG_NOTIFICATION_CAP);
    EXPECT_TAG(out + 2, CAPSULE_CAPTAG_ENDPOINT_CAP);
    /* The stack is empty again: loading its top finds nothing. */
    seL4_CPtr spare = alloc_slot();
    EXPECT_ERR(capsule_VSpace_CapLoad(VSPACE, csp - 32, ROOT, spare, DEPTH), seL4_FailedLookup);
    /* The same slots, named as a CNode: the capability page is one. */
    EXPECT_OK(seL4_CNode_Copy(page, 127, RADIX, ROOT, ep, DEPTH, seL4_AllRights));
    EXPECT_OK(capsule_VSpace_CapLoad(VSPACE, STACK_VA + 127 * 32, ROOT, spare, DEPTH));
    EXPECT_TAG(spare, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

/* ---- CAPPGG0003: weak access ---- */

static int weak_access(void)
{
    seL4_CPtr page, weak_copy, node, ep, fetched = alloc_slots(3);
    EXPECT_OK(make_page(&page));
    EXPECT_OK(make_objects(pool, seL4_CapTableObject, 4, 1, &node));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_OK(seL4_CNode_Copy(node, 1, 4, ROOT, ep, DEPTH, seL4_AllRights));
    weak_copy = alloc_slot();
    EXPECT_OK(seL4_CNode_Copy(ROOT, weak_copy, DEPTH, ROOT, page, DEPTH, seL4_AllRights));
    EXPECT_OK(capsule_CapPage_Map(page, VSPACE, WEAK_RW_VA, 0));
    EXPECT_OK(capsule_CapPage_Map(weak_copy, VSPACE, WEAK_VA, capsule_CapPageWeak));
    EXPECT_OK(capsule_VSpace_CapStore(VSPACE, WEAK_RW_VA + 32, ROOT, node, DEPTH));
    EXPECT_OK(capsule_VSpace_CapStore(VSPACE, WEAK_RW_VA + 64, ROOT, ep, DEPTH));
    /* The CNode cap, through the weak mapping: read-only and weak. */
    EXPECT_OK(capsule_VSpace_CapLoad(VSPACE, WEAK_VA + 32, ROOT, fetched, DEPTH));
    EXPECT_TAG(fetched, CAPSULE_CAPTAG_CNODE_CAP);
    EXPECT_ERR(seL4_CNode_Delete(fetched, 1, 4), seL4_IllegalOperation);
    EXPECT_ERR(seL4_CNode_Copy(ROOT, fetched + 1, DEPTH, fetched, 1, 4, seL4_AllRights),
               seL4_IllegalOperation);
    EXPECT_EMPTY(fetched + 1);
    /* The endpoint cap, through the weak mapping: null, so nothing is loaded. */
    EXPECT_ERR(capsule_VSpace_CapLoad(VSPACE, WEAK_VA + 64, ROOT, fetched + 2, DEPTH),
               seL4_IllegalOperation);
    EXPECT_EMPTY(fetched + 2);
    /* Through the read-write mapping it is the endpoint, and the CNode is whole. */
    EXPECT_OK(capsule_VSpace_CapLoad(VSPACE, WEAK_RW_VA + 64, ROOT, fetched + 2, DEPTH));
    EXPECT_TAG(fetched + 2, CAPSULE_CAPTAG_ENDPOINT_CAP);
    EXPECT_OK(seL4_CNode_Delete(node, 1, 4));
    return 0;
}

/* ---- CAPPGG0004: type faults, fixed and resumed ---- */

static volatile seL4_Word read_value, load_error = ~0ul, loaded_into, write_done;

static void faulter(void *arg)
{
    (void)arg;
    read_value = *(volatile seL4_Word *)FAULT_VA; /* a capability page: type fault */
    load_error = capsule_VSpace_CapLoad(VSPACE, FAULT_VA + 32, ROOT, loaded_into, DEPTH);
    /* The page was a data frame a moment ago: no stale translation may let this by. */
    *(volatile seL4_Word *)(FAULT_VA + 8) = 0x77;
    write_done = 1;
}

static int expect_type_fault(seL4_CPtr fault_ep, seL4_Word label, seL4_Word addr,
                             seL4_Word access, seL4_Word expected)
{
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(fault_ep, &badge);
    EXPECT_EQ(badge, FAULT_BADGE);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), label);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), 4);
    EXPECT_EQ(seL4_GetMR(capsule_TypeFault_Addr), addr);
    EXPECT_EQ(seL4_GetMR(capsule_TypeFault_Access), access);
    EXPECT_EQ(seL4_GetMR(capsule_TypeFault_Expected), expected);
    return 0;
}

static int type_faults_fixed_and_resumed(void)
{
    seL4_CPtr page, frame, ep, fault_ep, badged = alloc_slot();
    loaded_into = alloc_slot();
    EXPECT_OK(make_page(&page));
    EXPECT_OK(make_objects(pool, OBJ_4K_PAGE, 0, 1, &frame));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &fault_ep));
    EXPECT_OK(seL4_CNode_Mint(ROOT, badged, DEPTH, ROOT, fault_ep, DEPTH, seL4_AllRights,
                              FAULT_BADGE));
    EXPECT_OK(capsule_CapPage_Map(page, VSPACE, FAULT_VA, 0));
    EXPECT_OK(make(0, "faulter", faulter, 0, 255));
    EXPECT_OK(seL4_TCB_SetSpace(threads[0].tcb, badged, ROOT, 0, VSPACE, 0));
    EXPECT_OK(thread_start(&threads[0]));

    /* A data read of the capability page: the handler maps a data frame there. */
    EXPECT_PASS(expect_type_fault(fault_ep, capsule_Fault_DataAccessTypeError, FAULT_VA,
                                  capsule_AccessDataRead, 0));
    EXPECT_OK(capsule_CapPage_Unmap(page));
    EXPECT_OK(process_map_page(pool, VSPACE, frame, FAULT_VA, seL4_ReadWrite, 0));
    *(volatile seL4_Word *)FAULT_VA = 0x5eed;
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 0));

    /* A capability load from the data frame: the handler puts a capability page back,
     * holding an endpoint in the slot the load names (stored through the page's CNode
     * view). */
    EXPECT_PASS(expect_type_fault(fault_ep, capsule_Fault_CapAccessTypeError, FAULT_VA + 32,
                                  capsule_AccessCapLoad, 1));
    EXPECT_EQ(read_value, 0x5eed);
    EXPECT_OK(Page_Unmap(frame));
    EXPECT_OK(seL4_CNode_Copy(page, 1, RADIX, ROOT, ep, DEPTH, seL4_AllRights));
    EXPECT_OK(capsule_CapPage_Map(page, VSPACE, FAULT_VA, 0));
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 0));

    /* The load went through; then a data write where the capability page is again. */
    EXPECT_PASS(expect_type_fault(fault_ep, capsule_Fault_DataAccessTypeError, FAULT_VA + 8,
                                  capsule_AccessDataWrite, 0));
    EXPECT_EQ(load_error, seL4_NoError);
    EXPECT_TAG(loaded_into, CAPSULE_CAPTAG_ENDPOINT_CAP);
    EXPECT_EQ(write_done, 0);
    EXPECT_OK(capsule_CapPage_Unmap(page));
    EXPECT_OK(process_map_page(pool, VSPACE, frame, FAULT_VA, seL4_ReadWrite, 0));
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 0));
    seL4_Yield();
    EXPECT_EQ(write_done, 1);
    EXPECT_EQ(*(volatile seL4_Word *)(FAULT_VA + 8), 0x77);
    EXPECT_EQ(*(volatile seL4_Word *)FAULT_VA, 0x5eed); /* the frame kept its data */
    return 0;
}

static const struct check checks[] = {
    {"CAPPGG0001", "A server shares a pool of capabilities read-only with two clients",
     pool_shared_read_only},
    {"CAPPGG0002", "A capability stack: push and pop at addresses", capability_stack},
    {"CAPPGG0003", "Weak access weakens a CNode and nulls an endpoint", weak_access},
    {"CAPPGG0004", "Type faults reach the handler, which fixes them and resumes",
     type_faults_fixed_and_resumed},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
