/*
 * The spawn demo and the isolation checks of issue 6: the root task builds processes
 * from untyped memory with the process library (runtime/process.c), each running the
 * embedded ELF of spawn_child.c in its own CSpace and VSpace.
 *
 * Children A (sender) and B (receiver) talk through an endpoint the root task made and
 * gave them (A's copy badged 0xA), and share a frame the root task maps in both and in
 * its own VSpace. Three more children try what isolation forbids: reading memory only
 * the root task maps, reading kernel memory, invoking caps they were not given. As on
 * seL4, an empty slot of their own is an InvalidCapability error and the rest are
 * faults, which reach the root task through the fault endpoint it set for them, badged
 * with the child's number. Output and exit status: see checks.h.
 */
#include "checks.h"

#include <process.h>
#include <string.h>
#include <thread.h>

CAPSULE_EMBED_ELF(spawn_child)

#define SLOT_ENDPOINT 11
#define SLOT_PARENT 12
#define SHARED_VA 0x60000000ul
#define PARENT_ONLY_VA 0x50000000ul
#define FAULT_BADGE 0x100
#if defined(__riscv)
#define KERNEL_VA 0xffffffc000000000ul
#else
#define KERNEL_VA 0xffff000000000000ul
#endif

static seL4_CPtr pool, endpoint, parent_ep, shared_frame;

static int set_up(void);

struct event {
    seL4_Word badge, label, mr[4];
};

/* The next message on the parent endpoint (a report or a fault). */
static struct event next_event(void)
{
    struct event ev;
    seL4_MessageInfo_t info = seL4_Recv(parent_ep, &ev.badge);
    ev.label = seL4_MessageInfo_get_label(info);
    for (int i = 0; i < 4; i++) {
        ev.mr[i] = seL4_GetMR(i);
    }
    return ev;
}

static seL4_Error spawn(seL4_Word role, seL4_Word arg, seL4_Word number)
{
    static struct process children[8];
    struct process *p = &children[number];
    seL4_Word args[PROCESS_NUM_ARGS] = {role, arg, 0, 0};
    seL4_Error e = process_create(p, pool, capsule_elf_spawn_child,
                                  capsule_elf_spawn_child_size, "child", 100, args,
                                  parent_ep, FAULT_BADGE | number);
    if (e == seL4_NoError) {
        e = process_give_cap(p, SLOT_PARENT, parent_ep, seL4_AllRights, number);
    }
    if (e == seL4_NoError && role <= 2) {
        e = process_give_cap(p, SLOT_ENDPOINT, endpoint, seL4_AllRights, role == 1 ? 0xA : 0);
    }
    if (e == seL4_NoError && role <= 2) {
        e = process_share_frame(p, shared_frame, SHARED_VA, seL4_ReadWrite);
    }
    return e == seL4_NoError ? process_start(p) : e;
}

static int two_children_talk_and_share(void)
{
    if (set_up()) {
        return 1;
    }
    EXPECT_OK(spawn(2, 0, 2)); /* the receiver first: it waits on the endpoint */
    EXPECT_OK(spawn(1, 0, 1));
    struct event a = next_event(), b = next_event();
    if (a.badge == 2) {
        struct event t = a;
        a = b;
        b = t;
    }
    if (a.badge != 1 || a.label != 0 || a.mr[0] != 0) {
        return fail("sender: badge %lu label %lu status %lu", (unsigned long)a.badge,
                    (unsigned long)a.label, (unsigned long)a.mr[0]);
    }
    if (b.badge != 2 || b.label != 0 || b.mr[0] != 0) {
        return fail("receiver: badge %lu label %lu status %lu", (unsigned long)b.badge,
                    (unsigned long)b.label, (unsigned long)b.mr[0]);
    }
    if (b.mr[1] != 0xA) {
        return fail("the receiver saw badge %lx, not the sender's 0xA", (unsigned long)b.mr[1]);
    }
    if (strcmp((const char *)SHARED_VA, "pong from B") != 0) {
        return fail("the root task's view of the shared frame: '%s'", (const char *)SHARED_VA);
    }
    return 0;
}

static int expect_fault(seL4_Word number, seL4_Word label, seL4_Word address)
{
    struct event ev = next_event();
    if (ev.badge != (FAULT_BADGE | number) || ev.label != label || ev.mr[1] != address) {
        return fail("got badge %lx label %lu address %lx", (unsigned long)ev.badge,
                    (unsigned long)ev.label, (unsigned long)ev.mr[1]);
    }
    return 0;
}

static int reading_another_process_faults(void)
{
    if (set_up()) {
        return 1;
    }
    EXPECT_OK(spawn(3, PARENT_ONLY_VA, 3));
    return expect_fault(3, seL4_Fault_VMFault, PARENT_ONLY_VA);
}

static int reading_kernel_memory_faults(void)
{
    if (set_up()) {
        return 1;
    }
    EXPECT_OK(spawn(4, KERNEL_VA, 4));
    return expect_fault(4, seL4_Fault_VMFault, KERNEL_VA);
}

static int a_cap_not_given_fails(void)
{
    if (set_up()) {
        return 1;
    }
    /* The CPtr of the root task's endpoint with a bit set above the child's 8-bit
     * CNode: outside the child's CSpace (guard mismatch). */
    seL4_Word foreign = (1ul << 20) | endpoint;
    EXPECT_OK(spawn(5, foreign, 5));
    struct event ev = next_event();
    if (ev.badge != 5 || ev.label != 0 || ev.mr[0] != 0) {
        return fail("an empty slot gave %lu, not InvalidCapability", (unsigned long)ev.mr[1]);
    }
    return expect_fault(5, seL4_Fault_CapFault, foreign);
}

static const struct check checks[] = {
    {"SPAWN0001", "Two children talk through an endpoint and share a frame",
     two_children_talk_and_share},
    {"SPAWN0002", "A child reading the root task's memory faults to the root task",
     reading_another_process_faults},
    {"SPAWN0003", "A child reading kernel memory faults to the root task",
     reading_kernel_memory_faults},
    {"SPAWN0004", "A child's empty slot is InvalidCapability; a CPtr outside its CSpace "
     "faults to the root task", a_cap_not_given_fails},
};

/* Endpoints, the shared frame (mapped in the root task too) and a frame only the root
 * task maps; done once, before the first check. */
static int set_up(void)
{
    static int done;
    if (done++) {
        return 0;
    }
    seL4_CPtr secret = alloc_slot();
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &endpoint));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &parent_ep));
    EXPECT_OK(make_objects(pool, OBJ_4K_PAGE, 0, 1, &shared_frame));
    EXPECT_OK(process_map_page(pool, seL4_CapInitThreadVSpace, shared_frame, SHARED_VA,
                               seL4_ReadWrite, 0));
    EXPECT_OK(seL4_Untyped_Retype(pool, OBJ_4K_PAGE, 0, ROOT, 0, 0, secret, 1));
    EXPECT_OK(process_map_page(pool, seL4_CapInitThreadVSpace, secret, PARENT_ONLY_VA,
                               seL4_ReadWrite, 0));
    memcpy((char *)PARENT_ONLY_VA, "the root task's secret", sizeof("the root task's secret"));
    return 0;
}

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
