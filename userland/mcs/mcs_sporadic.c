/*
 * Two sporadic servers sharing the processor by their budgets and periods (built with
 * CONFIG_KERNEL_MCS): A has 2 ms every 10 ms at priority 110, B 3 ms every 10 ms at
 * priority 100, both spinning. Each notes its letter in a shared log whenever it finds
 * that the other ran since it last looked, so the log is the order of switches as the
 * threads see it. A referee at a higher priority sleeps until 7 ms into the last of
 * ROUNDS periods (a sporadic context whose period is that long, its budget given up at
 * once with seL4_Yield), then wakes the root task, which reads the log and what each
 * context consumed (seL4_SchedContext_Consumed).
 *
 * In each period A runs first (see run_servers), uses its 2 ms, then B its 3 ms, and
 * nobody runs for the last 5 ms: the log is "AB" once per period, and each consumed
 * its budget once per period.
 * Output and exit status: see userland/tests/checks.h.
 */
#include <string.h>

#include "checks.h"

#define PERIOD_US 10000
#define A_BUDGET_US 2000
#define B_BUDGET_US 3000
/* Periods the servers run before the referee looks: it wakes 7 ms into the last one,
 * when both have used their budget (by 5 ms) and neither is released again yet. */
#define ROUNDS 5
#define REFEREE_PERIOD_US ((ROUNDS - 1) * PERIOD_US + 7000)
#define REFEREE_BUDGET_US 100
/* MIN_BUDGET: twice seL4's default 10 µs WCET. A context found with less than it left
 * is charged at once, so each period's charge may fall short of the budget by that. */
#define MIN_BUDGET_US 20

static seL4_CPtr pool, sched_control, done, rest;

static int make(seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    *slot = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, type, size_bits, ROOT, 0, 0, *slot, 1));
    return 0;
}

/* A thread at `priority` on a new sporadic context of `budget_us` every `period_us`;
 * started (it runs once the root task blocks). */
static int sporadic_thread(struct thread *t, struct thread_storage *storage, const char *name,
                           thread_entry_fn entry, void *arg, seL4_Word priority,
                           seL4_Word budget_us, seL4_Word period_us, seL4_CPtr *sc)
{
    EXPECT_PASS(make(seL4_SchedContextObject, seL4_MinSchedContextBits, sc));
    EXPECT_OK(seL4_SchedControl_ConfigureFlags(sched_control, *sc, budget_us, period_us, 0, 0,
                                               seL4_SchedContext_Sporadic));
    EXPECT_OK(thread_create(t, storage, pool, name, entry, arg, priority));
    EXPECT_OK(seL4_TCB_SetSchedParams(t->tcb, seL4_CapInitThreadTCB, priority, priority, *sc,
                                      0));
    EXPECT_OK(thread_start(t));
    return 0;
}

/* ---- the servers and the referee ---- */

#define LOG_MAX 64

/* Volatile: written by the spinning threads, read by the others. */
static volatile char switch_log[LOG_MAX + 1];
static volatile unsigned long log_len;
static volatile char last_seen;

static void spin(void *arg)
{
    char me = (char)(seL4_Word)arg;
    for (;;) {
        if (last_seen != me) { /* the other ran since: a switch */
            last_seen = me;
            if (log_len < LOG_MAX) {
                switch_log[log_len++] = me;
            }
        }
    }
}

static void referee(void *arg)
{
    (void)arg;
    /* Yield gives up the rest of this refill: the next comes one period on. */
    seL4_Yield();
    seL4_Signal(done);
    seL4_Word badge;
    seL4_Wait(rest, &badge); /* never signalled: it stays here */
}

static struct thread_storage storage[3];
static struct thread a, b, ref;
static seL4_CPtr a_sc, b_sc, ref_sc;

/* A outranks B, so it runs first in the first period; in the later ones its refill
 * comes first too: a sporadic context's refills follow the time its thread started
 * (thread_start wakes it: seL4's refill_unblock_check moves the head refill to that
 * time), and A starts first. */
static int run_servers(void)
{
    EXPECT_PASS(sporadic_thread(&a, &storage[0], "serverA", spin, (void *)'A', 110,
                                A_BUDGET_US, PERIOD_US, &a_sc));
    EXPECT_PASS(sporadic_thread(&b, &storage[1], "serverB", spin, (void *)'B', 100,
                                B_BUDGET_US, PERIOD_US, &b_sc));
    EXPECT_PASS(sporadic_thread(&ref, &storage[2], "referee", referee, 0, 200,
                                REFEREE_BUDGET_US, REFEREE_PERIOD_US, &ref_sc));
    seL4_Word badge;
    seL4_Wait(done, &badge);
    /* Stop them where they are: what they consumed no longer changes. */
    EXPECT_OK(seL4_TCB_Suspend(a.tcb));
    EXPECT_OK(seL4_TCB_Suspend(b.tcb));
    return 0;
}

static int the_log_alternates(void)
{
    char want[LOG_MAX + 1];
    for (int i = 0; i < ROUNDS; i++) {
        want[2 * i] = 'A';
        want[2 * i + 1] = 'B';
    }
    want[2 * ROUNDS] = '\0';
    printf("  log %s\n", (const char *)switch_log);
    if (strcmp((const char *)switch_log, want) != 0) {
        return fail("log %s, expected %s", (const char *)switch_log, want);
    }
    return 0;
}

/* Consumed: ROUNDS budgets, each short by less than MIN_BUDGET. */
static int expect_consumed(const char *name, seL4_CPtr sc, seL4_Word budget_us)
{
    seL4_SchedContext_Consumed_t c = seL4_SchedContext_Consumed(sc);
    EXPECT_OK(c.error);
    printf("  %s consumed %lu us\n", name, (unsigned long)c.consumed);
    seL4_Word most = ROUNDS * budget_us, least = ROUNDS * (budget_us - MIN_BUDGET_US);
    if (c.consumed < least || c.consumed > most) {
        return fail("%s consumed %lu us, not within [%lu, %lu]", name,
                    (unsigned long)c.consumed, (unsigned long)least, (unsigned long)most);
    }
    return 0;
}

static int each_used_its_budgets(void)
{
    EXPECT_PASS(expect_consumed("A", a_sc, A_BUDGET_US));
    EXPECT_PASS(expect_consumed("B", b_sc, B_BUDGET_US));
    return 0;
}

static const struct check checks[] = {
    {"MCSSP0001", "two sporadic servers and a referee run", run_servers},
    {"MCSSP0002", "the switches alternate A, B once per period", the_log_alternates},
    {"MCSSP0003", "each consumed its budget once per period", each_used_its_budgets},
};

int main(void)
{
    pool = largest_untyped(0, 0);
    sched_control = seL4_GetBootInfo()->schedcontrol.start;
    done = alloc_slot();
    rest = alloc_slot();
    if (seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT, 0, 0, done, 1) ||
        seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT, 0, 0, rest, 1)) {
        printf("no notification\nverdict: 0 passed, 1 failed\n");
        return 1;
    }
    return run_checks(checks, sizeof(checks) / sizeof(checks[0]));
}
