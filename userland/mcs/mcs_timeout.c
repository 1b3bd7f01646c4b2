/*
 * MCS timeout faults from the root task (built with CONFIG_KERNEL_MCS): a thread on a
 * sporadic scheduling context (1 ms every 10 ms, badge 0x77) with a timeout handler
 * spins until its budget runs out; the root task, receiving on the handler endpoint
 * with a reply object, gets a Timeout fault carrying the badge and the time consumed,
 * replies, and sees the thread run again once its next refill comes. A thread on a
 * round-robin context (budget = period) with a handler too runs out of budget many
 * times and never raises one: seL4 only requeues round-robin threads. A TimeoutReply
 * with registers resumes a thread at the pc the handler gives.
 * Output and exit status: see userland/tests/checks.h.
 */
#include "checks.h"

/* seL4's Timeout fault message on a 64-bit kernel (seL4_Timeout_Msg in the sel4_arch
 * constants.h): the scheduling context's badge, then the time it consumed since it was
 * last reported, in microseconds. */
#define TIMEOUT_DATA 0
#define TIMEOUT_CONSUMED 1
#define TIMEOUT_LENGTH 2

#define BUDGET_US 1000
#define PERIOD_US 10000
#define SC_BADGE 0x77
/* The kernel's worst-case execution time (seL4's default, 10 µs) and MIN_BUDGET, twice
 * it: at every kernel entry seL4 charges a context whose head refill would be left
 * with less than MIN_BUDGET, so a budget is never more than MIN_BUDGET short when it
 * is found used up. */
#define WCET_US 10
#define MIN_BUDGET_US (2 * WCET_US)
/* The label of the round-robin thread's "done" message (not a fault label). */
#define DONE_LABEL 0x1234

static seL4_CPtr pool, sched_control, timeout_ep, reply, rest;

static int make(seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    *slot = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, type, size_bits, ROOT, 0, 0, *slot, 1));
    return 0;
}

/* A thread at priority 100 on a new context of `budget_us` every `period_us`, its
 * timeout handler `timeout_ep`; started (it runs once the root task blocks). */
static int thread_with_timeout_handler(struct thread *t, struct thread_storage *storage,
                                       const char *name, thread_entry_fn entry,
                                       seL4_Word budget_us, seL4_Word period_us,
                                       seL4_CPtr *sc)
{
    EXPECT_PASS(make(seL4_SchedContextObject, seL4_MinSchedContextBits, sc));
    EXPECT_OK(seL4_SchedControl_ConfigureFlags(sched_control, *sc, budget_us, period_us, 0,
                                               SC_BADGE, seL4_SchedContext_Sporadic));
    EXPECT_OK(thread_create(t, storage, pool, name, entry, 0, 100));
    EXPECT_OK(seL4_TCB_SetSchedParams(t->tcb, seL4_CapInitThreadTCB, 100, 100, *sc, 0));
    EXPECT_OK(seL4_TCB_SetTimeoutEndpoint(t->tcb, timeout_ep));
    EXPECT_OK(thread_start(t));
    return 0;
}

/* Receive the next message on the handler endpoint: fail unless it is a Timeout fault
 * for our context; *consumed is the time it reports. */
static int expect_timeout(seL4_Word *consumed)
{
    seL4_Word sender = ~0ul;
    seL4_MessageInfo_t info = seL4_Recv(timeout_ep, &sender, reply);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_Timeout);
    EXPECT_EQ(seL4_Fault_Timeout, 5);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), TIMEOUT_LENGTH);
    EXPECT_EQ(sender, 0); /* the handler cap's badge: none */
    EXPECT_EQ(seL4_GetMR(TIMEOUT_DATA), SC_BADGE);
    *consumed = seL4_GetMR(TIMEOUT_CONSUMED);
    printf("  timeout fault: badge %#lx, consumed %lu us\n",
           (unsigned long)seL4_GetMR(TIMEOUT_DATA), (unsigned long)*consumed);
    /* The timer is set for the end of the head refill (on seL4 a timer precision
     * earlier, at most 1 µs), and every kernel entry charges a context left with less than
     * MIN_BUDGET: when the budget is found used up, at least the budget less MIN_BUDGET
     * was used. At most the budget and the timer interrupt's entry, which the WCET
     * bounds. */
    if (*consumed < BUDGET_US - MIN_BUDGET_US || *consumed > BUDGET_US + WCET_US) {
        return fail("consumed %lu us, not within [%d, %d]", (unsigned long)*consumed,
                    BUDGET_US - MIN_BUDGET_US, BUDGET_US + WCET_US);
    }
    return 0;
}

/* ---- a sporadic context runs out: a Timeout fault each period ---- */

static struct thread_storage spinner_storage;
static struct thread spinner;
static seL4_CPtr spinner_sc;
static volatile seL4_Word spins;

static void spin(void *arg)
{
    (void)arg;
    for (;;) {
        spins++;
    }
}

static int timeout_fault(void)
{
    EXPECT_PASS(thread_with_timeout_handler(&spinner, &spinner_storage, "spinner", spin,
                                            BUDGET_US, PERIOD_US, &spinner_sc));
    seL4_Word consumed = 0;
    EXPECT_PASS(expect_timeout(&consumed));
    EXPECT_EQ(spins != 0, 1); /* it ran before its budget ran out */
    return 0;
}

/* Length 0 and label 0: resume the thread where it was (a TimeoutReply without
 * registers). Its budget is spent, so it waits for its next refill, one period after
 * the one it used, runs again and runs out again. */
static int reply_and_run_again(void)
{
    seL4_Word before = spins, consumed = 0;
    seL4_Send(reply, seL4_MessageInfo_new(0, 0, 0, 0));
    EXPECT_EQ(spins, before); /* not yet: we outrank it, and its refill is not due */
    EXPECT_PASS(expect_timeout(&consumed));
    printf("  spins %lu, then %lu\n", (unsigned long)before, (unsigned long)spins);
    EXPECT_EQ(spins > before, 1);
    /* What the fault reported was taken: nothing is left to read. */
    seL4_SchedContext_Consumed_t c = seL4_SchedContext_Consumed(spinner_sc);
    EXPECT_OK(c.error);
    EXPECT_EQ(c.consumed, 0);
    return 0;
}

/* A reply with a label other than 0 does not resume it: it stays Inactive, and its
 * refills come and go unused (checked below, once time has passed). */
static int reply_refusing(void)
{
    seL4_Send(reply, seL4_MessageInfo_new(1, 0, 0, 0));
    return 0;
}

/* ---- a round-robin context with a handler: no Timeout fault ---- */

#define RR_SPINS 200000

static struct thread_storage rr_storage;
static struct thread rr;
static seL4_CPtr rr_sc;
static volatile seL4_Word rr_spins;

static void spin_then_report(void *arg)
{
    (void)arg;
    for (rr_spins = 0; rr_spins < RR_SPINS; rr_spins++) {
    }
    seL4_Send(timeout_ep, seL4_MessageInfo_new(DONE_LABEL, 0, 0, 0));
    seL4_Word badge;
    seL4_Wait(rest, &badge); /* never signalled: it stays here */
}

static int round_robin_never_faults(void)
{
    seL4_Word spins_before = spins;
    EXPECT_PASS(thread_with_timeout_handler(&rr, &rr_storage, "roundrobin", spin_then_report,
                                            BUDGET_US, BUDGET_US, &rr_sc));
    seL4_Word sender = ~0ul;
    seL4_MessageInfo_t info = seL4_Recv(timeout_ep, &sender, reply);
    /* The first message is its report, not a fault, though it ran for many budgets. */
    EXPECT_EQ(seL4_MessageInfo_get_label(info), DONE_LABEL);
    EXPECT_EQ(rr_spins, RR_SPINS);
    seL4_SchedContext_Consumed_t c = seL4_SchedContext_Consumed(rr_sc);
    EXPECT_OK(c.error);
    printf("  round robin: consumed %lu us\n", (unsigned long)c.consumed);
    if (c.consumed < 3 * BUDGET_US) {
        return fail("consumed %lu us: fewer than 3 budgets", (unsigned long)c.consumed);
    }
    /* Meanwhile the spinner's refills came, but the refused reply left it stopped. */
    EXPECT_EQ(spins, spins_before);
    return 0;
}

/* ---- a TimeoutReply with registers: the thread resumes where the handler says ---- */

static struct thread_storage redirected_storage;
static struct thread redirected;
static seL4_CPtr redirected_sc;
static volatile int escaped;

static void spin_forever(void *arg)
{
    (void)arg;
    for (;;) {
    }
}

/* Where the handler sends the thread: it never returns (its stack is the spinner's
 * frame), it reports and stays blocked. */
static void escape(void)
{
    escaped = 1;
    seL4_Send(timeout_ep, seL4_MessageInfo_new(DONE_LABEL, 0, 0, 0));
    seL4_Word badge;
    seL4_Wait(rest, &badge);
}

static int reply_with_a_new_pc(void)
{
    EXPECT_PASS(thread_with_timeout_handler(&redirected, &redirected_storage, "redirected",
                                            spin_forever, BUDGET_US, PERIOD_US,
                                            &redirected_sc));
    seL4_Word consumed = 0;
    EXPECT_PASS(expect_timeout(&consumed));
    /* The reply's first word is the user context's first register, the pc (seL4's
     * TimeoutReply order, as seL4_UserContext's). */
    seL4_SetMR(0, (seL4_Word)escape);
    seL4_Send(reply, seL4_MessageInfo_new(0, 0, 0, 1));
    seL4_Word sender;
    seL4_MessageInfo_t info = seL4_Recv(timeout_ep, &sender, reply);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), DONE_LABEL);
    EXPECT_EQ(escaped, 1);
    return 0;
}

static const struct check checks[] = {
    {"MCSTO0001", "a sporadic context out of budget: a Timeout fault to the handler",
     timeout_fault},
    {"MCSTO0002", "replied to, the thread runs again after its next refill",
     reply_and_run_again},
    {"MCSTO0003", "a reply with a non-zero label leaves it stopped", reply_refusing},
    {"MCSTO0004", "a round-robin context with a handler is requeued, never faults",
     round_robin_never_faults},
    {"MCSTO0005", "a TimeoutReply's pc: the thread resumes there after its next refill",
     reply_with_a_new_pc},
};

int main(void)
{
    pool = largest_untyped(0, 0);
    sched_control = seL4_GetBootInfo()->schedcontrol.start;
    timeout_ep = alloc_slot();
    reply = alloc_slot();
    rest = alloc_slot();
    if (seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, 0, 0, timeout_ep, 1) ||
        seL4_Untyped_Retype(pool, seL4_ReplyObject, 0, ROOT, 0, 0, reply, 1) ||
        seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT, 0, 0, rest, 1)) {
        printf("no endpoint\nverdict: 0 passed, 1 failed\n");
        return 1;
    }
    return run_checks(checks, sizeof(checks) / sizeof(checks[0]));
}
