/*
 * MCS scheduling contexts from the root task (built with CONFIG_KERNEL_MCS): SchedControl
 * ConfigureFlags with its range checks, SchedContext Bind / Consumed / UnbindObject /
 * YieldTo, and a thread that runs on a scheduling context given with the MCS form of
 * TCB SetSchedParams, then signals the root task's notification.
 * Output and exit status: see userland/tests/checks.h.
 */
#include "checks.h"

static seL4_CPtr pool, sc, ntfn, sched_control;
static struct thread_storage worker_storage;
static struct thread worker;
static volatile int worker_ran;

static int make(seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    *slot = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, type, size_bits, ROOT, 0, 0, *slot, 1));
    return 0;
}

/* The range checks in seL4's order, then a sporadic 1 ms / 10 ms context. */
static int configure(void)
{
    EXPECT_PASS(make(seL4_SchedContextObject, 8, &sc));
    EXPECT_ERR(seL4_SchedControl_ConfigureFlags(sched_control, sc, 19, 1000, 0, 0, 0),
               seL4_RangeError);
    EXPECT_MR(0, 20);
    EXPECT_ERR(seL4_SchedControl_ConfigureFlags(sched_control, sc, 2000, 1000, 0, 0, 0),
               seL4_RangeError);
    EXPECT_MR(0, 20);
    EXPECT_MR(1, 1000);
    EXPECT_ERR(seL4_SchedControl_ConfigureFlags(sched_control, sc, 1000, 10000,
                                                seL4_MaxExtraRefills(8) + 1, 0, 0),
               seL4_RangeError);
    EXPECT_MR(1, seL4_MaxExtraRefills(8));
    EXPECT_ERR(seL4_SchedControl_ConfigureFlags(sched_control, ntfn, 1000, 1000, 0, 0, 0),
               seL4_InvalidCapability);
    EXPECT_OK(seL4_SchedControl_ConfigureFlags(sched_control, sc, 1000, 10000, 2, 0x5c,
                                               seL4_SchedContext_Sporadic));
    return 0;
}

static void work(void *arg)
{
    (void)arg;
    worker_ran = 1;
    seL4_Signal(ntfn);
}

/* A thread runs once it has a scheduling context: SetSchedParams gives it one. */
static int thread_on_context(void)
{
    EXPECT_OK(thread_create(&worker, &worker_storage, pool, "worker", work, 0, 100));
    EXPECT_ERR(seL4_TCB_SetSchedParams(worker.tcb, seL4_CapInitThreadTCB, 255, 100,
                                       seL4_CapInitThreadSC, 0),
               seL4_IllegalOperation); /* the root task's context is bound to it */
    EXPECT_OK(seL4_TCB_SetSchedParams(worker.tcb, seL4_CapInitThreadTCB, 255, 100, sc, 0));
    EXPECT_OK(thread_start(&worker));
    seL4_Word badge = 0;
    seL4_Wait(ntfn, &badge);
    EXPECT_EQ(worker_ran, 1);
    return 0;
}

static int consumed_and_unbind(void)
{
    seL4_SchedContext_Consumed_t c = seL4_SchedContext_Consumed(sc);
    EXPECT_OK(c.error);
    EXPECT_ERR(seL4_SchedContext_Bind(sc, worker.tcb), seL4_IllegalOperation);
    EXPECT_OK(seL4_SchedContext_UnbindObject(sc, worker.tcb));
    EXPECT_ERR(seL4_SchedContext_UnbindObject(sc, worker.tcb), seL4_IllegalOperation);
    EXPECT_OK(seL4_SchedContext_Bind(sc, ntfn));
    EXPECT_OK(seL4_SchedContext_Unbind(sc));
    return 0;
}

static int yield_to(void)
{
    seL4_SchedContext_YieldTo_t y = seL4_SchedContext_YieldTo(seL4_CapInitThreadSC);
    EXPECT_ERR(y.error, seL4_IllegalOperation);
    y = seL4_SchedContext_YieldTo(sc);
    EXPECT_ERR(y.error, seL4_IllegalOperation); /* nothing bound to it now */
    EXPECT_ERR(seL4_SchedContext_Unbind(seL4_CapInitThreadSC), seL4_IllegalOperation);
    return 0;
}

static const struct check checks[] = {
    {"MCSSC0001", "SchedControl_ConfigureFlags: ranges, cap, then a sporadic context",
     configure},
    {"MCSSC0002", "a thread runs on the context SetSchedParams gives it", thread_on_context},
    {"MCSSC0003", "Consumed, Bind, UnbindObject and Unbind", consumed_and_unbind},
    {"MCSSC0004", "YieldTo and Unbind refused on the caller's own context", yield_to},
};

int main(void)
{
    pool = largest_untyped(0, 0);
    sched_control = seL4_GetBootInfo()->schedcontrol.start;
    ntfn = alloc_slot();
    if (seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT, 0, 0, ntfn, 1)) {
        printf("no notification\nverdict: 0 passed, 1 failed\n");
        return 1;
    }
    return run_checks(checks, sizeof(checks) / sizeof(checks[0]));
}
