/*
 * A pc that is not a multiple of the instruction size.
 * - AArch64 checks the pc's alignment before fetching: an exception of class 0x22 (PC
 *   alignment fault), IL set, no ISS, so ESR_EL1 = 0x22 << 26 | 1 << 25 = 0x8a000000.
 *   seL4 handles only data and instruction aborts and syscalls itself; every other
 *   class from EL0 becomes a UserException whose Number is ESR_EL1 (Code 0) and whose
 *   FaultIP is ELR_EL1, the misaligned pc itself.
 * - RISC-V with compressed instructions aligns to 2 bytes: jalr clears bit 0 of its
 *   target and every other jump offset is even, and sepc[0] is always zero, so a pc the
 *   kernel was given odd resumes at pc & ~1. No exception arises (seL4 would pass
 *   scause 0 on as a UserException, but it never comes).
 * In both cases seL4 stores the pc it is given as is (its sanitiseRegister leaves pc
 * alone), so TCB_ReadRegisters shows it until the thread runs.
 * The root task is the fault handler, at the threads' priority (255).
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 1
#include "threads_util.h"

#define FAULT_BADGE 0xa1

#if defined(__riscv)
#define ILLEGAL_INSN ".2byte 0" /* c.unimp */
#define UE_ILLEGAL 2            /* scause: illegal instruction */
#define OFF_GRID 1              /* the smallest step off the 2-byte grid */
#define SET_ARG0_2B "li a0, 0x2b"
#define ARG_REG(n) "a" #n
#else
#define ILLEGAL_INSN "udf #0"
#define ESR(ec) (((seL4_Word)(ec) << 26) | (1ul << 25)) /* IL set, ISS 0 */
#define UE_ILLEGAL ESR(0x00)    /* EC 0: unknown reason */
#define UE_PC_ALIGNMENT ESR(0x22)
#define OFF_GRID 2
#define SET_ARG0_2B "mov x0, #0x2b"
#define ARG_REG(n) "x" #n
#endif

/* Fail unless thread 0's saved pc is `pc`. */
static int expect_saved_pc(seL4_Word pc)
{
    seL4_UserContext regs;
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, 1, &regs));
    EXPECT_EQ(regs.pc, pc);
    return 0;
}

/* ---- an indirect jump off the grid ---- */

extern const char jump_landing[];
static volatile seL4_Word jump_value, jump_done;

static void jump_thread(void *arg)
{
    (void)arg;
    register seL4_Word r0 __asm__(ARG_REG(0)) = 0;
    register seL4_Word target __asm__(ARG_REG(5)) = (seL4_Word)jump_landing + OFF_GRID;
#if defined(__riscv)
    __asm__ volatile("jr a5\n"
#else
    __asm__ volatile("br x5\n"
#endif
                     ".global jump_landing\njump_landing:\n\t" SET_ARG0_2B
                     : "+r"(r0)
                     : "r"(target)
                     : "memory");
    jump_value = r0;
    jump_done = 1;
}

static int indirect_jump_off_the_grid(void)
{
    jump_done = 0;
    jump_value = 0;
    EXPECT_PASS(make_with_fault_handler("jump", jump_thread, FAULT_BADGE));
    EXPECT_OK(thread_start(&threads[0]));
#if defined(__aarch64__)
    /* The branch completes; the fetch at its target faults, and again each time the
     * thread is sent back there. Then resume on the grid. */
    EXPECT_PASS(expect_user_exception(FAULT_BADGE, (seL4_Word)jump_landing + OFF_GRID, UE_PC_ALIGNMENT));
    reply_resume_at((seL4_Word)jump_landing + OFF_GRID);
    EXPECT_PASS(expect_user_exception(FAULT_BADGE, (seL4_Word)jump_landing + OFF_GRID, UE_PC_ALIGNMENT));
    reply_resume_at((seL4_Word)jump_landing);
#endif
    seL4_Yield();
    EXPECT_EQ(jump_done, 1);
    EXPECT_EQ(jump_value, 0x2b); /* the instruction at jump_landing ran */
    return 0;
}

/* ---- a pc the kernel is given off the grid ---- */

extern const char realign_illegal_at[], realign_resume[];
static volatile seL4_Word realign_value, realign_done;

static void realign_thread(void *arg)
{
    (void)arg;
    register seL4_Word r0 __asm__(ARG_REG(0)) = 0;
    __asm__ volatile(".global realign_illegal_at\nrealign_illegal_at:\n\t" ILLEGAL_INSN "\n"
                     ".global realign_resume\nrealign_resume:\n\t" SET_ARG0_2B
                     : "+r"(r0)
                     :
                     : "memory");
    realign_value = r0;
    realign_done = 1;
}

static int fault_reply_off_the_grid(void)
{
    realign_done = 0;
    realign_value = 0;
    seL4_Word off_grid = (seL4_Word)realign_resume + OFF_GRID;
    EXPECT_PASS(make_with_fault_handler("realign", realign_thread, FAULT_BADGE));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_PASS(expect_user_exception(FAULT_BADGE, (seL4_Word)realign_illegal_at, UE_ILLEGAL));
    reply_resume_at(off_grid);
    EXPECT_PASS(expect_saved_pc(off_grid)); /* kept as given until the thread runs */
#if defined(__aarch64__)
    EXPECT_PASS(expect_user_exception(FAULT_BADGE, off_grid, UE_PC_ALIGNMENT));
    EXPECT_EQ(realign_value, 0);
    reply_resume_at((seL4_Word)realign_resume);
#endif
    seL4_Yield();
    EXPECT_EQ(realign_done, 1);
    EXPECT_EQ(realign_value, 0x2b); /* the instruction at realign_resume ran */
    return 0;
}

#if defined(__aarch64__)
#define JUMP_TITLE "An indirect jump off the 4-byte grid: UserException, ESR EC 0x22"
#define REPLY_TITLE "A fault reply to a pc off the grid: kept, then UserException, EC 0x22"
#else
#define JUMP_TITLE "An indirect jump to an odd address lands on the even one below"
#define REPLY_TITLE "A fault reply to an odd pc: kept, then resumes at the even one below"
#endif

static const struct check checks[] = {
    {"PCALIGN0001", JUMP_TITLE, indirect_jump_off_the_grid},
    {"PCALIGN0002", REPLY_TITLE, fault_reply_off_the_grid},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
