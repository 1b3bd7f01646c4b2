/*
 * MCS IPC from the root task (built with CONFIG_KERNEL_MCS): Call / Recv / ReplyRecv
 * with reply objects, a passive server (no scheduling context of its own) that runs on
 * its clients' lent ones, and a stateful server holding two reply objects that answers
 * its clients out of order (no SaveCaller dance).
 * Output and exit status: see userland/tests/checks.h.
 */
#include "checks.h"

static seL4_CPtr pool, sched_control, ep, done;

static int make(seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    *slot = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, type, size_bits, ROOT, 0, 0, *slot, 1));
    return 0;
}

/* A thread at `priority` on a new round-robin scheduling context (1 ms). */
static int thread_with_context(struct thread *t, struct thread_storage *storage,
                               const char *name, thread_entry_fn entry, void *arg,
                               seL4_Word priority, seL4_CPtr *sc)
{
    EXPECT_PASS(make(seL4_SchedContextObject, seL4_MinSchedContextBits, sc));
    EXPECT_OK(seL4_SchedControl_Configure(sched_control, *sc, 1000, 1000, 0, 0));
    EXPECT_OK(thread_create(t, storage, pool, name, entry, arg, priority));
    EXPECT_OK(seL4_TCB_SetSchedParams(t->tcb, seL4_CapInitThreadTCB, priority, priority, *sc,
                                      0));
    EXPECT_OK(thread_start(t));
    return 0;
}

/* ---- an echo server: the answer is the question plus one ---- */

static struct thread_storage server_storage;
static struct thread server;
static seL4_CPtr server_sc, server_reply;

static void serve(void *arg)
{
    (void)arg;
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(ep, &badge, server_reply);
    for (;;) {
        seL4_SetMR(0, seL4_GetMR(0) + 1);
        info = seL4_MessageInfo_new(seL4_MessageInfo_get_label(info) + 100, 0, 0, 1);
        info = seL4_ReplyRecv(ep, info, &badge, server_reply);
    }
}

static int call_server(seL4_Word question, seL4_Word *answer, seL4_Word *label)
{
    seL4_SetMR(0, question);
    seL4_MessageInfo_t reply = seL4_Call(ep, seL4_MessageInfo_new(7, 0, 0, 1));
    *answer = seL4_GetMR(0);
    *label = seL4_MessageInfo_get_label(reply);
    return 0;
}

static int echo(void)
{
    EXPECT_PASS(make(seL4_ReplyObject, 0, &server_reply));
    EXPECT_PASS(thread_with_context(&server, &server_storage, "server", serve, 0, 200,
                                    &server_sc));
    seL4_Word answer = 0, label = 0;
    EXPECT_PASS(call_server(41, &answer, &label));
    EXPECT_EQ(answer, 42);
    EXPECT_EQ(label, 107);
    EXPECT_PASS(call_server(99, &answer, &label));
    EXPECT_EQ(answer, 100);
    return 0;
}

/* The server loses its own context while it waits: it is passive and runs on ours. */
static int passive(void)
{
    EXPECT_OK(seL4_SchedContext_UnbindObject(server_sc, server.tcb));
    seL4_Word answer = 0, label = 0;
    EXPECT_PASS(call_server(1, &answer, &label));
    EXPECT_EQ(answer, 2);
    EXPECT_PASS(call_server(2, &answer, &label));
    EXPECT_EQ(answer, 3);
    /* Ours came back each time: we may still unbind and rebind the server's. */
    EXPECT_OK(seL4_SchedContext_Bind(server_sc, server.tcb));
    return 0;
}

/* ---- a server with two reply objects answers two clients out of order ---- */

static struct thread_storage client_storage[2], keeper_storage;
static struct thread clients[2], keeper;
static seL4_CPtr client_sc[2], keeper_sc, keeper_ep, keeper_rest, replies[2];
static volatile seL4_Word answers[2], received[2], finished;

static void client(void *arg)
{
    seL4_Word n = (seL4_Word)arg;
    seL4_SetMR(0, n);
    seL4_Call(keeper_ep, seL4_MessageInfo_new(0, 0, 0, 1));
    answers[n - 1] = seL4_GetMR(0);
    finished++;
    seL4_Signal(done);
}

static void keep(void *arg)
{
    (void)arg;
    seL4_Word badge, first, second;
    seL4_Recv(keeper_ep, &badge, replies[0]);
    received[0] = first = seL4_GetMR(0);
    seL4_Recv(keeper_ep, &badge, replies[1]);
    received[1] = second = seL4_GetMR(0);
    /* both callers wait at once, each on its own reply object: the later one is
     * answered first */
    seL4_SetMR(0, second + 10);
    seL4_Send(replies[1], seL4_MessageInfo_new(0, 0, 0, 1));
    seL4_SetMR(0, first + 10);
    seL4_Send(replies[0], seL4_MessageInfo_new(0, 0, 0, 1));
    seL4_Wait(keeper_rest, &badge); /* never signalled: the keeper stays here */
}

static int out_of_order(void)
{
    EXPECT_PASS(make(seL4_EndpointObject, 0, &keeper_ep));
    EXPECT_PASS(make(seL4_NotificationObject, 0, &keeper_rest));
    EXPECT_PASS(make(seL4_ReplyObject, 0, &replies[0]));
    EXPECT_PASS(make(seL4_ReplyObject, 0, &replies[1]));
    EXPECT_PASS(thread_with_context(&keeper, &keeper_storage, "keeper", keep, 0, 150,
                                    &keeper_sc));
    EXPECT_PASS(thread_with_context(&clients[0], &client_storage[0], "client0", client,
                                    (void *)1, 100, &client_sc[0]));
    EXPECT_PASS(thread_with_context(&clients[1], &client_storage[1], "client1", client,
                                    (void *)2, 100, &client_sc[1]));
    seL4_Word badge;
    while (finished < 2) {
        seL4_Wait(done, &badge);
    }
    EXPECT_EQ(received[0] + received[1], 3); /* both callers reached the keeper */
    EXPECT_EQ(answers[0], 11);
    EXPECT_EQ(answers[1], 12);
    return 0;
}

/* A Call to a receiver without a reply object leaves the caller inactive: here, the
 * keeper waits with seL4_Wait, so a Call from a fresh thread never returns. */
static struct thread_storage lost_storage;
static struct thread lost;
static seL4_CPtr lost_sc, wait_ep;
static volatile int lost_returned;

static void lost_caller(void *arg)
{
    (void)arg;
    seL4_Call(wait_ep, seL4_MessageInfo_new(0, 0, 0, 0));
    lost_returned = 1;
}

static struct thread_storage waiter_storage;
static struct thread waiter;
static seL4_CPtr waiter_sc;

static void wait_only(void *arg)
{
    (void)arg;
    seL4_Word badge;
    seL4_Wait(wait_ep, &badge);
    seL4_Signal(done);
    seL4_Wait(wait_ep, &badge);
}

static int call_without_reply_object(void)
{
    EXPECT_PASS(make(seL4_EndpointObject, 0, &wait_ep));
    EXPECT_PASS(thread_with_context(&waiter, &waiter_storage, "waiter", wait_only, 0, 90,
                                    &waiter_sc));
    EXPECT_PASS(thread_with_context(&lost, &lost_storage, "lost", lost_caller, 0, 80,
                                    &lost_sc));
    seL4_Word badge;
    seL4_Wait(done, &badge);
    seL4_Yield();
    EXPECT_EQ(lost_returned, 0);
    return 0;
}

/* ---- faults: to the handler cap the TCB holds, answered through a reply object ---- */

static struct thread_storage faulter_storage;
static struct thread faulter;
static seL4_CPtr faulter_sc, fault_ep, fault_reply;

static void fault_now(void *arg)
{
    (void)arg;
    *(volatile seL4_Word *)0x10 = 1;
}

static int fault_to_handler(void)
{
    EXPECT_PASS(make(seL4_EndpointObject, 0, &fault_ep));
    EXPECT_PASS(make(seL4_ReplyObject, 0, &fault_reply));
    EXPECT_PASS(make(seL4_SchedContextObject, seL4_MinSchedContextBits, &faulter_sc));
    EXPECT_OK(seL4_SchedControl_Configure(sched_control, faulter_sc, 1000, 1000, 0, 0));
    EXPECT_OK(thread_create(&faulter, &faulter_storage, pool, "faulter", fault_now, 0, 90));
    EXPECT_OK(seL4_TCB_SetSpace(faulter.tcb, fault_ep, seL4_CapInitThreadCNode, 0,
                                seL4_CapInitThreadVSpace, 0));
    EXPECT_OK(seL4_TCB_SetSchedParams(faulter.tcb, seL4_CapInitThreadTCB, 90, 90, faulter_sc,
                                      fault_ep));
    EXPECT_OK(thread_start(&faulter));
    seL4_Word badge = 1;
    seL4_MessageInfo_t info = seL4_Recv(fault_ep, &badge, fault_reply);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_VMFault);
    EXPECT_EQ(seL4_Fault_VMFault, 6); /* MCS numbering: Timeout took 5 */
    EXPECT_EQ(seL4_GetMR(1), 0x10);   /* the address */
    EXPECT_EQ(badge, 0);
    /* Any reply restarts a thread after a VMFault (the label is not read): it will
     * fault again when it runs, and find nobody receiving. */
    seL4_Send(fault_reply, seL4_MessageInfo_new(0, 0, 0, 0));
    return 0;
}

static const struct check checks[] = {
    {"MCSIPC0001", "Call, Recv and ReplyRecv with a reply object", echo},
    {"MCSIPC0002", "a passive server runs on its callers' contexts", passive},
    {"MCSIPC0003", "two reply objects: two callers answered out of order", out_of_order},
    {"MCSIPC0004", "a Call to a receiver without a reply object: the caller stays inactive",
     call_without_reply_object},
    {"MCSIPC0005", "a fault goes to the TCB's handler cap, answered through a reply object",
     fault_to_handler},
};

int main(void)
{
    pool = largest_untyped(0, 0);
    sched_control = seL4_GetBootInfo()->schedcontrol.start;
    ep = alloc_slot();
    done = alloc_slot();
    if (seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, 0, 0, ep, 1) ||
        seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT, 0, 0, done, 1)) {
        printf("no endpoint\nverdict: 0 passed, 1 failed\n");
        return 1;
    }
    return run_checks(checks, sizeof(checks) / sizeof(checks[0]));
}
