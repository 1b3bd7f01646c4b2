/*
 * A scheduling context lent down a call stack two Calls deep (built with
 * CONFIG_KERNEL_MCS): the root task calls passive server "first", which calls passive
 * server "second"; "second" runs on the root task's context, and the call stack is
 * second's reply object (caller first) over first's (caller rootserver). Each reply
 * gives the context back one Call. tests/cli/test_cli_mcs_views.py stops here to look at
 * that chain with capsule's views.
 * Output and exit status: see userland/tests/checks.h.
 */
#include "checks.h"

static seL4_CPtr pool, sched_control;
static seL4_CPtr first_ep, second_ep, first_reply, second_reply;
static seL4_CPtr first_sc, second_sc;
static struct thread_storage first_storage, second_storage;
static struct thread first, second;

static int make(seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    *slot = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, type, size_bits, ROOT, 0, 0, *slot, 1));
    return 0;
}

/* A thread at `priority` on a new round-robin scheduling context (1 ms). */
static int thread_with_context(struct thread *t, struct thread_storage *storage,
                               const char *name, thread_entry_fn entry,
                               seL4_Word priority, seL4_CPtr *sc)
{
    EXPECT_PASS(make(seL4_SchedContextObject, seL4_MinSchedContextBits, sc));
    EXPECT_OK(seL4_SchedControl_Configure(sched_control, *sc, 1000, 1000, 0, 0));
    EXPECT_OK(thread_create(t, storage, pool, name, entry, 0, priority));
    EXPECT_OK(seL4_TCB_SetSchedParams(t->tcb, seL4_CapInitThreadTCB, priority, priority, *sc,
                                      0));
    EXPECT_OK(thread_start(t));
    return 0;
}

/* second: the answer is the question doubled. */
static void serve_second(void *arg)
{
    (void)arg;
    seL4_Word badge;
    seL4_Recv(second_ep, &badge, second_reply);
    for (;;) {
        seL4_SetMR(0, seL4_GetMR(0) * 2);
        seL4_ReplyRecv(second_ep, seL4_MessageInfo_new(0, 0, 0, 1), &badge, second_reply);
    }
}

/* first: asks second about the question plus one, and answers with what it got. */
static void serve_first(void *arg)
{
    (void)arg;
    seL4_Word badge;
    seL4_Recv(first_ep, &badge, first_reply);
    for (;;) {
        seL4_SetMR(0, seL4_GetMR(0) + 1);
        seL4_Call(second_ep, seL4_MessageInfo_new(0, 0, 0, 1));
        seL4_ReplyRecv(first_ep, seL4_MessageInfo_new(0, 0, 0, 1), &badge, first_reply);
    }
}

static seL4_Word ask(seL4_Word question)
{
    seL4_SetMR(0, question);
    seL4_Call(first_ep, seL4_MessageInfo_new(0, 0, 0, 1));
    return seL4_GetMR(0);
}

static int servers_on_their_own(void)
{
    EXPECT_PASS(make(seL4_EndpointObject, 0, &first_ep));
    EXPECT_PASS(make(seL4_EndpointObject, 0, &second_ep));
    EXPECT_PASS(make(seL4_ReplyObject, 0, &first_reply));
    EXPECT_PASS(make(seL4_ReplyObject, 0, &second_reply));
    EXPECT_PASS(thread_with_context(&second, &second_storage, "second", serve_second, 210,
                                    &second_sc));
    EXPECT_PASS(thread_with_context(&first, &first_storage, "first", serve_first, 200,
                                    &first_sc));
    EXPECT_EQ(ask(20), 42);
    return 0;
}

/* Both lose their own contexts while they wait: the root task's goes down the chain
 * and comes back, one reply at a time. */
static int a_context_lent_two_calls_deep(void)
{
    EXPECT_OK(seL4_SchedContext_UnbindObject(first_sc, first.tcb));
    EXPECT_OK(seL4_SchedContext_UnbindObject(second_sc, second.tcb));
    EXPECT_EQ(ask(1), 4);
    EXPECT_EQ(ask(5), 12);
    /* Ours came back each time: theirs can be bound to them again. */
    EXPECT_OK(seL4_SchedContext_Bind(first_sc, first.tcb));
    EXPECT_OK(seL4_SchedContext_Bind(second_sc, second.tcb));
    return 0;
}

static const struct check checks[] = {
    {"MCSCHAIN0001", "two servers on their own contexts answer a question together",
     servers_on_their_own},
    {"MCSCHAIN0002", "two passive servers: the caller's context lent two Calls deep",
     a_context_lent_two_calls_deep},
};

int main(void)
{
    sched_control = seL4_GetBootInfo()->schedcontrol.start;
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
