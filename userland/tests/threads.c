/*
 * Threads: creation with the runtime's thread API, scheduling order, Suspend/Resume,
 * register access, TLS base and MCP checks (non-MCS seL4 semantics).
 *
 * The root task runs at priority 255. To let threads at lower priorities run it lowers
 * its own priority to 50 (let_run) and raises it back to 255 when they are all done
 * (it is then the only runnable thread again). Expected orders follow seL4:
 * - Resume puts a thread at the *front* of its priority's queue (restart ->
 *   tcbSchedEnqueue), so threads resumed A, B, C first run C, B, A;
 * - Yield and the end of a time slice put the thread at the *back*;
 * - a thread made runnable at a higher priority than the current one runs at once.
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 4
#include "threads_util.h"

/* ---- creation ---- */

static volatile seL4_Word created_arg;

static void record_arg(void *arg)
{
    created_arg = (seL4_Word)arg;
}

static int create_and_run(void)
{
    created_arg = 0;
    EXPECT_OK(make(0, "one", record_arg, (void *)0x5eed, 100));
    if (created_arg != 0) {
        return fail("thread ran before Resume");
    }
    EXPECT_OK(thread_start(&threads[0]));
    if (created_arg != 0) {
        return fail("priority-100 thread ran while the root task (255) was runnable");
    }
    EXPECT_OK(let_run());
    if (created_arg != 0x5eed) {
        return fail("thread did not run with its argument (got %#lx)",
                    (unsigned long)created_arg);
    }
    return 0;
}

/* ---- round robin ---- */

static void yield_three_times(void *arg)
{
    for (int i = 0; i < 3; i++) {
        note((char)(seL4_Word)arg);
        seL4_Yield();
    }
}

/*
 * Threads A, B and C of priority 100 run `fn` (their letter as argument), started in
 * that order: fail unless they take turns C, B, A three times (each Resume queues at the
 * front).
 */
static int three_take_turns(thread_entry_fn fn)
{
    reset_order();
    EXPECT_OK(make(0, "A", fn, (void *)'A', 100));
    EXPECT_OK(make(1, "B", fn, (void *)'B', 100));
    EXPECT_OK(make(2, "C", fn, (void *)'C', 100));
    for (int i = 0; i < 3; i++) {
        EXPECT_OK(thread_start(&threads[i]));
    }
    EXPECT_OK(let_run());
    EXPECT_ORDER_IS("CBACBACBA");
    return 0;
}

static int round_robin_yield(void)
{
    return three_take_turns(yield_three_times);
}

/*
 * Each thread notes itself once per time slice until nine turns are noted. The length
 * is read once per iteration and the note is two stores, so a thread preempted between
 * the check and the note writes the slot it checked (runs are deterministic: a badly
 * placed preemption would show as a failure, not as flakiness).
 */
static void spin_turns(void *arg)
{
    char me = (char)(seL4_Word)arg;
    for (;;) {
        unsigned long n = order_len;
        if (n >= 9) {
            return;
        }
        if (n == 0 || order[n - 1] != me) {
            order[n] = me;
            order[n + 1] = '\0';
            order_len = n + 1;
        }
    }
}

static int round_robin_time_slices(void)
{
    return three_take_turns(spin_turns);
}

/* ---- preemption ---- */

static void high_body(void *arg)
{
    (void)arg;
    note('H');
}

static void low_body(void *arg)
{
    (void)arg;
    note('1');
    thread_start(&threads[1]); /* H (150) preempts L (100) at once */
    note('2');
}

static int higher_priority_preempts(void)
{
    reset_order();
    EXPECT_OK(make(1, "H", high_body, 0, 150));
    EXPECT_OK(make(0, "L", low_body, 0, 100));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(let_run());
    EXPECT_ORDER_IS("1H2");
    return 0;
}

/* ---- suspend / resume ---- */

static volatile int counter;

static void count_and_stop(void *arg)
{
    (void)arg;
    for (;;) {
        counter++;
        seL4_TCB_Suspend(threads[0].tcb); /* Resume continues after this call */
    }
}

static int suspend_self_and_resume(void)
{
    counter = 0;
    EXPECT_OK(make(0, "S", count_and_stop, 0, 255));
    for (int i = 1; i <= 3; i++) {
        EXPECT_OK(thread_start(&threads[0])); /* equal priority: queued behind us */
        seL4_Yield();
        if (counter != i) {
            return fail("after resume %d the counter is %d", i, counter);
        }
    }
    /* Resume of a thread that is not stopped does nothing: it stays queued once. */
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    seL4_Yield();
    if (counter != 3) {
        return fail("a suspended thread ran (counter %d)", counter);
    }
    return 0;
}

static seL4_CPtr ep;
static volatile seL4_Word received;
static volatile int receiver_done;

static void receiver(void *arg)
{
    (void)arg;
    seL4_Recv(ep, 0);
    received = seL4_GetMR(0);
    receiver_done = 1;
}

static int suspend_blocked_thread_restarts_its_syscall(void)
{
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    received = 0;
    receiver_done = 0;
    EXPECT_OK(make(0, "R", receiver, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Yield(); /* R blocks in Recv */
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    EXPECT_OK(seL4_TCB_Resume(threads[0].tcb));
    seL4_Yield(); /* R runs its Recv again and blocks again */
    if (receiver_done) {
        return fail("the resumed receiver returned from Recv without a message");
    }
    seL4_SetMR(0, 0xabc);
    seL4_Send(ep, seL4_MessageInfo_new(0, 0, 0, 1));
    seL4_Yield();
    if (!receiver_done || received != 0xabc) {
        return fail("receiver done %d, MR0 %#lx", receiver_done, (unsigned long)received);
    }
    return 0;
}

/* ---- registers ---- */

#define NREGS (sizeof(seL4_UserContext) / sizeof(seL4_Word))

static void never_runs(void *arg)
{
    (void)arg;
}

static seL4_Word expected_word(unsigned long i, seL4_Word v)
{
#if defined(__aarch64__)
    /* SPSR (index 2): only NZCV may be set, and the kernel forces EL0t with FIQs masked. */
    if (i == 2) {
        return (v & 0xf0000000UL) | 0x40;
    }
#else
    (void)i;
#endif
    return v;
}

static int write_then_read_registers(void)
{
    EXPECT_OK(make(0, "W", never_runs, 0, 10));
    seL4_UserContext in, out;
    seL4_Word *w = (seL4_Word *)&in;
    for (unsigned long i = 0; i < NREGS; i++) {
        w[i] = 0x1111111111111111UL * (i % 15 + 1) + i;
    }
    EXPECT_OK(seL4_TCB_WriteRegisters(threads[0].tcb, 0, 0, NREGS, &in));
    memset(&out, 0, sizeof(out));
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, NREGS, &out));
    seL4_Word *r = (seL4_Word *)&out;
    for (unsigned long i = 0; i < NREGS; i++) {
        if (r[i] != expected_word(i, w[i])) {
            return fail("register %lu reads %#lx, wrote %#lx", i, (unsigned long)r[i],
                        (unsigned long)w[i]);
        }
    }
    return 0;
}

static int copy_registers(void)
{
#if defined(__riscv)
    const unsigned long frame = 16;
#else
    const unsigned long frame = 17;
#endif
    EXPECT_OK(make(0, "src", never_runs, 0, 10));
    EXPECT_OK(make(1, "dst", never_runs, 0, 10));
    seL4_UserContext a, b, out;
    seL4_Word *wa = (seL4_Word *)&a, *wb = (seL4_Word *)&b, *r = (seL4_Word *)&out;
    for (unsigned long i = 0; i < NREGS; i++) {
        wa[i] = 0xa000 + i;
        wb[i] = 0xb000 + i;
    }
    EXPECT_OK(seL4_TCB_WriteRegisters(threads[0].tcb, 0, 0, NREGS, &a));
    EXPECT_OK(seL4_TCB_WriteRegisters(threads[1].tcb, 0, 0, NREGS, &b));
    /* frame registers only */
    EXPECT_OK(seL4_TCB_CopyRegisters(threads[1].tcb, threads[0].tcb, 0, 0, 1, 0, 0));
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[1].tcb, 0, 0, NREGS, &out));
    for (unsigned long i = 0; i < NREGS; i++) {
        seL4_Word want = expected_word(i, i < frame ? wa[i] : wb[i]);
        if (r[i] != want) {
            return fail("frame copy: register %lu is %#lx, expected %#lx", i,
                        (unsigned long)r[i], (unsigned long)want);
        }
    }
    /* then the integer registers too */
    EXPECT_OK(seL4_TCB_CopyRegisters(threads[1].tcb, threads[0].tcb, 0, 0, 0, 1, 0));
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[1].tcb, 0, 0, NREGS, &out));
    for (unsigned long i = 0; i < NREGS; i++) {
        if (r[i] != expected_word(i, wa[i])) {
            return fail("integer copy: register %lu is %#lx", i, (unsigned long)r[i]);
        }
    }
    return 0;
}

static int read_own_registers_refused(void)
{
    seL4_UserContext out;
    EXPECT_ERR(seL4_TCB_ReadRegisters(seL4_CapInitThreadTCB, 0, 0, NREGS, &out),
               seL4_IllegalOperation);
    EXPECT_OK(make(0, "x", never_runs, 0, 10));
    EXPECT_ERR(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, NREGS + 1, &out),
               seL4_RangeError);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, NREGS);
    return 0;
}

/* ---- TLS ---- */

static char other_tls[THREAD_TLS_SIZE] __attribute__((aligned(64)));
static volatile seL4_Word seen_tls;

static void read_tls(void *arg)
{
    (void)arg;
    seL4_Word v;
    READ_TLS_BASE(v);
    seen_tls = v;
}

static int set_tls_base(void)
{
    seen_tls = 0;
    EXPECT_OK(make(0, "tls", read_tls, 0, 255));
    seL4_Word base = (seL4_Word)capsule_tls_setup(other_tls);
    EXPECT_OK(seL4_TCB_SetTLSBase(threads[0].tcb, base));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Yield();
    if (seen_tls != base) {
        return fail("thread saw TLS base %#lx, set %#lx", (unsigned long)seen_tls,
                    (unsigned long)base);
    }
    return 0;
}

/* ---- MCP ---- */

static int mcp_refusals(void)
{
    EXPECT_OK(make(0, "auth", never_runs, 0, 10));
    EXPECT_OK(make(1, "target", never_runs, 0, 10));
    /* A new TCB's MCP is 0: as an authority it allows priority 0 only. */
    EXPECT_ERR(seL4_TCB_SetPriority(threads[1].tcb, threads[0].tcb, 1), seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, 0);
    EXPECT_OK(seL4_TCB_SetMCPriority(threads[0].tcb, seL4_CapInitThreadTCB, 100));
    EXPECT_ERR(seL4_TCB_SetPriority(threads[1].tcb, threads[0].tcb, 101), seL4_RangeError);
    EXPECT_MR(1, 100);
    EXPECT_OK(seL4_TCB_SetPriority(threads[1].tcb, threads[0].tcb, 100));
    EXPECT_ERR(seL4_TCB_SetPriority(threads[1].tcb, seL4_CapInitThreadTCB, 256),
               seL4_RangeError);
    EXPECT_MR(1, 255);
    EXPECT_ERR(seL4_TCB_SetSchedParams(threads[1].tcb, threads[0].tcb, 101, 0),
               seL4_RangeError);
    return 0;
}

static const struct check checks[] = {
    {"THREAD0001", "A created thread runs with its argument once it may", create_and_run},
    {"THREAD0002", "Equal priorities yield round robin, last resumed first",
     round_robin_yield},
    {"THREAD0003", "Equal priorities share time slices round robin", round_robin_time_slices},
    {"THREAD0004", "A higher-priority thread preempts when resumed", higher_priority_preempts},
    {"THREAD0005", "Suspend of self, Resume continues after the call", suspend_self_and_resume},
    {"THREAD0006", "Resume of a thread suspended in Recv runs the Recv again",
     suspend_blocked_thread_restarts_its_syscall},
    {"THREAD0007", "WriteRegisters then ReadRegisters round trip", write_then_read_registers},
    {"THREAD0008", "CopyRegisters frame then integer registers", copy_registers},
    {"THREAD0009", "ReadRegisters of self and of too many registers are refused",
     read_own_registers_refused},
    {"THREAD0010", "SetTLSBase is the thread's TLS register", set_tls_base},
    {"THREAD0011", "Priorities above the authority's MCP are RangeError", mcp_refusals},
};

int main(void)
{
    (void)alloc_slot;
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
