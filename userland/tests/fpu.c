/*
 * The FPU (seL4 16.0.0 with CONFIG_HAVE_FPU, as sel4test's builds): every thread may use
 * floating point from its start; each keeps its own FP registers across switches; a
 * thread with seL4_TCBFlag_fpuDisabled set faults on its first FP instruction with a
 * UserException (RISC-V: scause 2, illegal instruction; AArch64: ESR of an FP access
 * trap, EC 0x07 with IL, CV and COND 0xE), and runs it once the flag is cleared.
 *
 * The runtime is built without FP code, so the FP instructions here are written in
 * assembly and no compiler-generated code touches the FP registers.
 */
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 1
#include "threads_util.h"

#define ONE 0x3ff0000000000000UL   /* 1.0 */
#define TWO 0x4000000000000000UL   /* 2.0 */
#define THREE 0x4008000000000000UL /* 3.0 */
#define FAULT_BADGE 0xf9

#if defined(__riscv)
#define UE_NUMBER_FPU_OFF 2UL /* illegal instruction */
#define FP_ON ".option push\n.option arch, +d\n"
#define FP_OFF ".option pop\n"
/* x + x in double precision. */
static seL4_Word fp_double(seL4_Word x)
{
    seL4_Word y;
    __asm__ volatile(FP_ON "fmv.d.x ft0, %1\nfadd.d ft0, ft0, ft0\nfmv.x.d %0, ft0\n" FP_OFF
                     : "=r"(y) : "r"(x));
    return y;
}
static void fp_set_f9(seL4_Word x)
{
    __asm__ volatile(FP_ON "fmv.d.x fs1, %0\n" FP_OFF : : "r"(x));
}
static seL4_Word fp_get_f9(void)
{
    seL4_Word y;
    __asm__ volatile(FP_ON "fmv.x.d %0, fs1\n" FP_OFF : "=r"(y));
    return y;
}
#else
#define UE_NUMBER_FPU_OFF (0x07UL << 26 | 1UL << 25 | 1UL << 24 | 0xeUL << 20)
static seL4_Word fp_double(seL4_Word x)
{
    seL4_Word y;
    __asm__ volatile(".arch_extension fp\nfmov d0, %1\nfadd d0, d0, d0\nfmov %0, d0\n"
                     : "=r"(y) : "r"(x) : "v0");
    return y;
}
static void fp_set_f9(seL4_Word x)
{
    __asm__ volatile(".arch_extension fp\nfmov d9, %0\n" : : "r"(x) : "v9");
}
static seL4_Word fp_get_f9(void)
{
    seL4_Word y;
    __asm__ volatile(".arch_extension fp\nfmov %0, d9\n" : "=r"(y));
    return y;
}
#endif

static volatile seL4_Word thread_result, thread_saw;

static int root_uses_fp(void)
{
    EXPECT_EQ(fp_double(ONE), TWO);
    return 0;
}

static void clobber_f9(void *unused)
{
    (void)unused;
    fp_set_f9(THREE);
    seL4_Yield(); /* back to the root, which checks its own value, then here again */
    thread_saw = fp_get_f9();
}

static int registers_are_per_thread(void)
{
    fp_set_f9(ONE);
    EXPECT_OK(make(0, "clobber", clobber_f9, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Yield(); /* the thread sets its own f9 / d9 to 3.0 and yields back */
    EXPECT_EQ(fp_get_f9(), ONE);
    fp_set_f9(TWO);
    seL4_Yield(); /* it reads its register after our change, then ends */
    EXPECT_EQ(thread_saw, THREE);
    EXPECT_EQ(fp_get_f9(), TWO);
    return 0;
}

static void fp_worker(void *unused)
{
    (void)unused;
    thread_result = fp_double(THREE);
}

static int disabled_fpu_faults(void)
{
    thread_result = 0;
    EXPECT_PASS(make_with_fault_handler("nofpu", fp_worker, FAULT_BADGE));
    seL4_TCB_SetFlags_t set = seL4_TCB_SetFlags(threads[0].tcb, 0, seL4_TCBFlag_fpuDisabled);
    EXPECT_OK(set.error);
    EXPECT_EQ(set.flags, seL4_TCBFlag_fpuDisabled);
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(fault_ep, &badge);
    EXPECT_EQ(badge, FAULT_BADGE);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_UserException);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), UE_LENGTH);
    EXPECT_EQ(seL4_GetMR(UE_NUMBER), UE_NUMBER_FPU_OFF);
    EXPECT_EQ(thread_result, 0);
    /* Enable it and resume the thread at the same instruction (the reply's FaultIP). */
    seL4_TCB_SetFlags_t clear = seL4_TCB_SetFlags(threads[0].tcb, seL4_TCBFlag_fpuDisabled, 0);
    EXPECT_OK(clear.error);
    EXPECT_EQ(clear.flags, 0);
    seL4_Word words[UE_LENGTH];
    for (int i = 0; i < UE_LENGTH; i++) {
        words[i] = seL4_GetMR(i);
    }
    for (int i = 0; i < UE_LENGTH; i++) {
        seL4_SetMR(i, words[i]);
    }
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, UE_LENGTH));
    seL4_Yield(); /* the thread finishes its addition and ends */
    EXPECT_EQ(thread_result, 0x4018000000000000UL); /* 6.0 */
    return 0;
}

static int root_still_uses_fp(void)
{
    EXPECT_EQ(fp_double(TWO), 0x4010000000000000UL); /* 4.0 */
    return 0;
}

static const struct check checks[] = {
    {"FPU0001", "The root task runs FP instructions from the start", root_uses_fp},
    {"FPU0002", "Each thread keeps its own FP registers across switches",
     registers_are_per_thread},
    {"FPU0003", "With fpuDisabled an FP instruction is a UserException; cleared, it runs",
     disabled_fpu_faults},
    {"FPU0004", "The root task's FPU is unaffected", root_still_uses_fp},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
