/*
 * Scheduling domains (seL4 16.0.0's domain cap, slot seL4_CapDomain), in an image
 * configured with 3 domains: a 100-entry domain schedule whose only entry at boot gives
 * domain 0 (the root task's) the processor for 2^56 - 1 ticks.
 *
 * A worker thread counts in a loop at priority 100; the root task runs at 255. The
 * checks put the worker in domain 1 and edit the schedule: the worker runs only in its
 * domain's turns, whatever the priorities, and the root task (domain 0) only in its own.
 */
#include "checks.h"
#include <thread.h>

#define NTHREADS 1
static seL4_CPtr pool;
#include "threads_util.h"

static volatile seL4_Word counter;
static const seL4_Word MAX_DURATION = (1ul << 56) - 1;

static void count(void *unused)
{
    (void)unused;
    for (;;) {
        counter = counter + 1;
    }
}

/* Spin for about `n` loop iterations (several timer ticks for a few hundred thousand). */
static void spin(unsigned long n)
{
    for (volatile unsigned long i = 0; i < n; i++) {
    }
}

static int set_errors(void)
{
    EXPECT_ERR(seL4_DomainSet_Set(seL4_CapDomain, 3, seL4_CapInitThreadTCB),
               seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    EXPECT_ERR(seL4_DomainSet_Set(seL4_CapDomain, 1, seL4_CapInitThreadCNode),
               seL4_InvalidArgument);
    EXPECT_MR(0, 1);
    return 0;
}

static int configure_errors(void)
{
    EXPECT_ERR(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 99, 0, 5), seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, 98);
    EXPECT_ERR(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 1, 3, 5), seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, 2);
    EXPECT_ERR(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 1, 1, MAX_DURATION + 1),
               seL4_InvalidArgument);
    EXPECT_MR(0, 2);
    EXPECT_ERR(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 1, 2, 0), seL4_InvalidArgument);
    EXPECT_MR(0, 1);
    EXPECT_ERR(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 0, 0, 0), seL4_InvalidArgument);
    EXPECT_MR(0, 2);
    return 0;
}

static int set_start_errors(void)
{
    EXPECT_ERR(seL4_DomainSet_ScheduleSetStart(seL4_CapDomain, 100), seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, 99);
    EXPECT_ERR(seL4_DomainSet_ScheduleSetStart(seL4_CapDomain, 5), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    return 0;
}

static int other_domain_waits(void)
{
    EXPECT_OK(make(0, "worker", count, 0, 100));
    EXPECT_OK(seL4_DomainSet_Set(seL4_CapDomain, 1, threads[0].tcb));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(let_run()); /* the root drops to 50: a domain-0 thread at 100 would run now */
    spin(300000);
    EXPECT_EQ(counter, 0);
    return 0;
}

static int schedule_gives_turns(void)
{
    EXPECT_OK(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 0, 0, 2));
    EXPECT_OK(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 1, 1, 2));
    EXPECT_OK(seL4_DomainSet_ScheduleSetStart(seL4_CapDomain, 0));
    /* The root (255) keeps running through domain 0's turns only: the worker counts in
     * domain 1's, so the counter moves between two of the root's reads. */
    seL4_Word before = counter;
    for (unsigned long tries = 0; counter == before; tries++) {
        if (tries > 5000000) {
            return fail("the worker never ran in domain 1's turns");
        }
    }
    seL4_Word later = counter;
    spin(300000);
    if (counter == later) {
        return fail("the worker stopped after one turn");
    }
    return 0;
}

static int one_entry_again(void)
{
    EXPECT_OK(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 0, 0, MAX_DURATION));
    EXPECT_OK(seL4_DomainSet_ScheduleConfigure(seL4_CapDomain, 1, 0, 0)); /* end marker */
    EXPECT_OK(seL4_DomainSet_ScheduleSetStart(seL4_CapDomain, 0));
    seL4_Word before = counter;
    spin(300000);
    EXPECT_EQ(counter, before);
    return 0;
}

static int back_to_domain_zero(void)
{
    /* In domain 0 at the root's priority, the worker shares the processor by round robin. */
    EXPECT_OK(seL4_TCB_SetPriority(threads[0].tcb, seL4_CapInitThreadTCB, 255));
    EXPECT_OK(seL4_DomainSet_Set(seL4_CapDomain, 0, threads[0].tcb));
    seL4_Word before = counter;
    seL4_Yield();
    if (counter == before) {
        return fail("the worker did not run after joining domain 0");
    }
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    return 0;
}

static const struct check checks[] = {
    {"DOMAIN0001", "Set: a domain past the last and a non-thread cap are refused", set_errors},
    {"DOMAIN0002", "ScheduleConfigure: index, domain and duration checks",
     configure_errors},
    {"DOMAIN0003", "ScheduleSetStart: past the schedule and an end marker are refused",
     set_start_errors},
    {"DOMAIN0004", "A thread of domain 1 does not run in domain 0's time, even above the root",
     other_domain_waits},
    {"DOMAIN0005", "A two-entry schedule gives the worker's domain turns", schedule_gives_turns},
    {"DOMAIN0006", "Back to one entry, domain 1 gets no more time", one_entry_again},
    {"DOMAIN0007", "Set back into domain 0, the worker runs by round robin",
     back_to_domain_zero},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
