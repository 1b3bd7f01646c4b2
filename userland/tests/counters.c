/*
 * User-mode counters, as seL4 gives them and capsule counts them (deterministically:
 * one cycle per instruction retired).
 * - RISC-V: rdcycle, rdtime and rdinstret are always readable (OpenSBI enables them for
 *   user mode and seL4 leaves them so); a counter the hart lacks (hpmcounter3) and a
 *   write to a read-only counter are illegal instructions.
 * - AArch64: with KernelArmExportPMUUser (PMUSERENR_EL0.EN, readable at EL0, tells)
 *   the PMU registers work at EL0: the cycle counter and event counter 0 counting
 *   INST_RETIRED, set up as sel4bench's libsel4bench does. Without it, an EL0 read of
 *   PMCCNTR_EL0 is a UserException whose Number is the ESR of a trapped MRS (EC 0x18).
 *   Either way an EL1 PMU register (PMINTENSET_EL1) and a write to PMUSERENR_EL0 are
 *   UNDEFINED at EL0 (EC 0).
 * The program prints the values it read: two runs of one image print the same.
 */
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 1
#include "threads_util.h"

#define FAULT_BADGE 0xc7
#define LOOPS 1000

#if defined(__riscv)
#define READ_CYCLES(v) __asm__ volatile("rdcycle %0" : "=r"(v))
#define READ_INSTRET(v) __asm__ volatile("rdinstret %0" : "=r"(v))
#define UE_ILLEGAL 2 /* scause: illegal instruction */
#else
#define READ_CYCLES(v) __asm__ volatile("mrs %0, pmccntr_el0" : "=r"(v))
#define READ_INSTRET(v) __asm__ volatile("mrs %0, pmxevcntr_el0" : "=r"(v)) /* counter 0 */
#define ESR(ec, iss) (((seL4_Word)(ec) << 26) | (1ul << 25) | (iss))
#define UE_ILLEGAL ESR(0x00, 0)
/* ISS of a trapped MRS/MSR: Op0 [21:20], Op2 [19:17], Op1 [16:14], CRn [13:10], Rt [9:5],
 * CRm [4:1], Direction [0] (1: read). */
#define SYSREG_ISS(op0, op1, crn, crm, op2, rt, read)                                      \
    (((op0) << 20) | ((op2) << 17) | ((op1) << 14) | ((crn) << 10) | ((rt) << 5) |       \
     ((crm) << 1) | (read))
#define UE_PMCCNTR_READ_X3 ESR(0x18, SYSREG_ISS(3, 3, 9, 13, 0, 3, 1))

static seL4_Word pmuserenr(void)
{
    seL4_Word v;
    __asm__ volatile("mrs %0, pmuserenr_el0" : "=r"(v));
    return v;
}

/* As libsel4bench's sel4bench_init, then event counter 0 counting INST_RETIRED (0x08). */
static void pmu_start(void)
{
    seL4_Word pmcr;
    __asm__ volatile("msr pmcntenclr_el0, %0" ::"r"(~0ul));
    __asm__ volatile("mrs %0, pmcr_el0" : "=r"(pmcr));
    pmcr = (pmcr & ~8ul) | 1 | 2 | 4; /* clear D; E, reset event counters and cycles */
    __asm__ volatile("msr pmcr_el0, %0" ::"r"(pmcr));
    __asm__ volatile("msr pmselr_el0, %0" ::"r"(0ul));
    __asm__ volatile("msr pmxevtyper_el0, %0" ::"r"(0x08ul));
    __asm__ volatile("msr pmcntenset_el0, %0" ::"r"((1ul << 31) | 1));
}
#endif

/* A UserException at `ip` with Number `number`; the thread resumes after the
 * instruction. */
static int skip_user_exception(seL4_Word ip, seL4_Word number)
{
    EXPECT_PASS(expect_user_exception(FAULT_BADGE, ip, number));
    reply_resume_at(ip + 4);
    return 0;
}

/* ---- readable counters ---- */

static int cycles_count_instructions(void)
{
    seL4_Word a, b;
#if defined(__riscv)
    __asm__ volatile("rdcycle %0\n\trdcycle %1" : "=r"(a), "=r"(b));
#else
    __asm__ volatile("mrs %0, pmccntr_el0\n\tmrs %1, pmccntr_el0" : "=r"(a), "=r"(b));
#endif
    printf("  cycles %lu then %lu\n", (unsigned long)a, (unsigned long)b);
    EXPECT_EQ(b - a, 1); /* one instruction, one cycle */
    return 0;
}

static int instructions_retired_exactly(void)
{
    seL4_Word before, after, n = LOOPS;
    /* The first read, the loop counter's set-up, then LOOPS times (decrement, branch). */
#if defined(__riscv)
    __asm__ volatile("rdinstret %0\n\tmv t0, %2\n"
                     "1:\taddi t0, t0, -1\n\tbnez t0, 1b\n\trdinstret %1"
                     : "=&r"(before), "=r"(after)
                     : "r"(n)
                     : "t0");
#else
    __asm__ volatile("mrs %0, pmxevcntr_el0\n\tmov x9, %2\n"
                     "1:\tsubs x9, x9, #1\n\tb.ne 1b\n\tmrs %1, pmxevcntr_el0"
                     : "=&r"(before), "=r"(after)
                     : "r"(n)
                     : "x9", "cc");
#endif
    printf("  instructions retired %lu then %lu\n", (unsigned long)before,
           (unsigned long)after);
    EXPECT_EQ(after - before, 2 + 2 * LOOPS);
    return 0;
}

static volatile seL4_Word seen_by_thread;

static void read_in_thread(void *arg)
{
    (void)arg;
    seL4_Word v;
    READ_CYCLES(v);
    seen_by_thread = v;
}

static int monotonic_across_kernel_and_threads(void)
{
    seL4_Word c0, c1, c2, i0, i1;
    READ_CYCLES(c0);
    READ_INSTRET(i0);
    seL4_Yield();
    READ_CYCLES(c1);
    EXPECT_OK(make(0, "reader", read_in_thread, 0, 254));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(let_run());
    READ_CYCLES(c2);
    READ_INSTRET(i1);
    printf("  cycles %lu, %lu after Yield, %lu in another thread, %lu after it\n",
           (unsigned long)c0, (unsigned long)c1, (unsigned long)seen_by_thread,
           (unsigned long)c2);
    if (!(c0 < c1 && c1 < seen_by_thread && seen_by_thread < c2 && i0 < i1))
        return fail("not increasing");
    return 0;
}

static int configuration_reads(void)
{
#if defined(__riscv)
    seL4_Word t0, i, t1;
    __asm__ volatile("rdtime %0\n\trdinstret %1\n\trdtime %2" : "=r"(t0), "=r"(i), "=r"(t1));
    printf("  time %lu then %lu, instret %lu\n", (unsigned long)t0, (unsigned long)t1,
           (unsigned long)i);
    EXPECT_EQ(t1 - t0, 2); /* time is instructions, as capsule's clock */
    if (t0 < i - 1)
        return fail("time %lu behind the instructions retired %lu", (unsigned long)t0,
                    (unsigned long)i);
#else
    seL4_Word pmcr, ceid0;
    __asm__ volatile("mrs %0, pmcr_el0\n\tmrs %1, pmceid0_el0" : "=r"(pmcr), "=r"(ceid0));
    printf("  PMCR_EL0 %#lx PMCEID0_EL0 %#lx\n", (unsigned long)pmcr, (unsigned long)ceid0);
    EXPECT_EQ(pmuserenr(), 1);
    EXPECT_EQ((pmcr >> 11) & 0x1f, 6); /* six event counters, as QEMU's cortex-a53 */
    EXPECT_EQ(pmcr & 1, 1);            /* enabled by pmu_start */
    EXPECT_EQ(ceid0 & (1ul << 8 | 1ul << 0x11), 1ul << 8 | 1ul << 0x11);
#endif
    return 0;
}

/* ---- faulting accesses ---- */

extern const char bad_first[], bad_second[];

static void bad_accesses(void *arg)
{
    (void)arg;
#if defined(__riscv)
    __asm__ volatile(".global bad_first\nbad_first:\n\tcsrr a0, hpmcounter3\n"
                     ".global bad_second\nbad_second:\n\tcsrw cycle, a0" ::: "a0");
#else
    __asm__ volatile(".global bad_first\nbad_first:\n\tmsr pmintenset_el1, xzr\n"
                     ".global bad_second\nbad_second:\n\tmsr pmuserenr_el0, xzr" ::: "memory");
#endif
    seen_by_thread = 0x5a;
}

static int undefined_everywhere(void)
{
    seen_by_thread = 0;
    EXPECT_PASS(make_with_fault_handler("bad", bad_accesses, FAULT_BADGE));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_PASS(skip_user_exception((seL4_Word)bad_first, UE_ILLEGAL));
    EXPECT_PASS(skip_user_exception((seL4_Word)bad_second, UE_ILLEGAL));
    seL4_Yield();
    EXPECT_EQ(seen_by_thread, 0x5a);
    return 0;
}

#if defined(__aarch64__)
extern const char pmccntr_read_at[];

static void read_unexported(void *arg)
{
    (void)arg;
    register seL4_Word x3 __asm__("x3") = 0;
    __asm__ volatile(".global pmccntr_read_at\npmccntr_read_at:\n\tmrs x3, pmccntr_el0"
                     : "+r"(x3));
    seen_by_thread = 0x5b + x3;
}

static int unexported_read_traps(void)
{
    seen_by_thread = 0;
    EXPECT_EQ(pmuserenr(), 0);
    EXPECT_PASS(make_with_fault_handler("unexported", read_unexported, FAULT_BADGE));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_PASS(skip_user_exception((seL4_Word)pmccntr_read_at, UE_PMCCNTR_READ_X3));
    seL4_Yield();
    EXPECT_EQ(seen_by_thread, 0x5b); /* resumed after the read, x3 unchanged */
    return 0;
}
#endif

static const struct check readable[] = {
    {"CNTR0001", "Two cycle counter reads in a row differ by one", cycles_count_instructions},
    {"CNTR0002", "Instructions retired over a loop: exactly its instructions",
     instructions_retired_exactly},
    {"CNTR0003", "Counters increase across a system call and another thread",
     monotonic_across_kernel_and_threads},
    {"CNTR0004", "The clock (RISC-V) / PMU identification (AArch64) reads",
     configuration_reads},
    {"CNTR0006", "A counter access no configuration allows is a UserException",
     undefined_everywhere},
};

#if defined(__aarch64__)
static const struct check unexported[] = {
    {"CNTR0005", "PMU not exported: an EL0 read is a UserException, EC 0x18",
     unexported_read_traps},
    {"CNTR0006", "A counter access no configuration allows is a UserException",
     undefined_everywhere},
};
#endif

int main(void)
{
#if defined(__aarch64__)
    if (!pmuserenr())
        return checks_main(unexported, sizeof(unexported) / sizeof(unexported[0]), &pool);
    pmu_start();
#endif
    return checks_main(readable, sizeof(readable) / sizeof(readable[0]), &pool);
}
