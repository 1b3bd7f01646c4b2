/*
 * Fault handling over IPC (non-MCS seL4 semantics, abi/errors.md "Message layouts" and
 * "Replying to faults"; seL4's handleFaultReply):
 * - a fault is sent as a Call on the thread's fault endpoint (a CPtr in its own CSpace,
 *   set here with TCB SetSpace), with the cap's badge and label = the fault type;
 * - UnknownSyscall and UserException: the reply's MRs are written into the registers
 *   the message listed (SPSR sanitised), and the thread resumes only on label 0 —
 *   at FaultIP, so a handler that wants the trap skipped writes FaultIP + its size;
 * - CapFault and VMFault: any reply restarts the thread at the faulting instruction,
 *   unchanged; the handler fixes the cause (puts a cap in the slot) or changes the
 *   thread's registers with WriteRegisters (which sets the restart pc) before replying;
 * - a thread whose fault endpoint is not usable stops (Inactive); others go on.
 *
 * The root task is every fault handler. Faulting threads run at its priority (255), so
 * they run when it blocks in Recv on the fault endpoint or yields.
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 2
#include "threads_util.h"

#define FAULT_BADGE 0xfa
#define UNMAPPED 0x10000000UL
#define NREGS (sizeof(seL4_UserContext) / sizeof(seL4_Word))

/* Per-architecture facts of the fault messages (abi/errors.md). */
#if defined(__riscv)
#define US_LENGTH 11  /* FaultIP, SP, RA, A0-A6, Syscall */
#define US_REGS 10    /* the registers a reply may write */
#define US_IP 0
#define US_SP 1
#define US_A0 3
#define UE_NUMBER_ILLEGAL 2 /* scause: illegal instruction */
#define ILLEGAL_SIZE 2      /* c.unimp, the all-zero 16-bit instruction */
#define ILLEGAL_INSN ".2byte 0"
#define VM_FSR_LOAD 5       /* seL4 reports a load page fault as a load access fault */
#define VM_FSR_FETCH 1      /* ... and an instruction page fault as an access fault */
#define TRAP "ecall"
#define ARG_REG(n) "a" #n /* the n-th argument register, for register variables */
#define CTX_ARG0 a0       /* its seL4_UserContext field, for n = 0 */
#define CTX_LINK ra       /* the return address's field */
#else
#define US_LENGTH 13  /* X0-X7, FaultIP, SP, LR, SPSR, Syscall */
#define US_REGS 12
#define US_IP 8
#define US_SP 9
#define US_A0 0
#define US_SPSR 11
#define UE_NUMBER_ILLEGAL 0x2000000UL /* ESR: EC 0 (unknown reason), IL 1 */
#define ILLEGAL_SIZE 4
#define ILLEGAL_INSN "udf #0"
#define TRAP "svc #0"
#define ARG_REG(n) "x" #n
#define CTX_ARG0 x0
#define CTX_LINK x30
#endif

/* Wait for the next fault; check its label, length and badge. */
#define EXPECT_FAULT(info_, label_, length_)                                               \
    do {                                                                                   \
        seL4_Word badge_;                                                                  \
        info_ = seL4_Recv(fault_ep, &badge_);                                              \
        EXPECT_EQ(badge_, FAULT_BADGE);                                                    \
        EXPECT_EQ(seL4_MessageInfo_get_label(info_), (label_));                            \
        EXPECT_EQ(seL4_MessageInfo_get_length(info_), (length_));                          \
        EXPECT_EQ(seL4_MessageInfo_get_extraCaps(info_), 0);                               \
    } while (0)

/*
 * Start thread 0 running `fn`, its fault handler a badged cap to a new fault_ep, and
 * receive its first fault: fail unless it has `label` and `length`. The fault's MRs are
 * left for the caller to check.
 */
static int start_faulter(const char *name, thread_entry_fn fn, seL4_Word label,
                         seL4_Word length)
{
    EXPECT_PASS(make_with_fault_handler(name, fn, FAULT_BADGE));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_MessageInfo_t info;
    EXPECT_FAULT(info, label, length);
    return 0;
}

/* The `pc` for set_pc_and_arg0 that returns from the call that faulted. */
#define RETURN_ADDRESS ((seL4_Word)-1)

/*
 * Thread 0 is stopped by a fault at `at`: set its pc to `pc` (RETURN_ADDRESS: its
 * return address register) and a0 / x0 to `arg0` with WriteRegisters, which also makes
 * `pc` the restart pc the reply resumes at.
 */
static int set_pc_and_arg0(seL4_Word at, seL4_Word pc, seL4_Word arg0)
{
    seL4_UserContext regs;
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, NREGS, &regs));
    EXPECT_EQ(regs.pc, at);
    regs.pc = pc == RETURN_ADDRESS ? regs.CTX_LINK : pc;
    regs.CTX_ARG0 = arg0;
    EXPECT_OK(seL4_TCB_WriteRegisters(threads[0].tcb, 0, 0, NREGS, &regs));
    return 0;
}

/* Reply to thread 0's fault, label 0 and `length` MRs, and let it run: fail unless it
 * ran to its end (set *done). */
static int reply_and_run_to_end(seL4_Word length, volatile seL4_Word *done)
{
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, length));
    seL4_Yield();
    EXPECT_EQ(*done, 1);
    return 0;
}

/*
 * A syscall whose trap instruction is the global label `label` (so handlers can check
 * FaultIP); cap in a0 / x0, msginfo 0; MR0 comes back in `mr0`.
 */
#define LABELLED_SYSCALL(label, sys, cap, mr0)                                             \
    do {                                                                                   \
        register seL4_Word r0_ __asm__(ARG_REG(0)) = (cap);                                \
        register seL4_Word r1_ __asm__(ARG_REG(1)) = 0;                                    \
        register seL4_Word r2_ __asm__(ARG_REG(2)) = 0;                                    \
        register seL4_Word r3_ __asm__(ARG_REG(3)) = 0;                                    \
        register seL4_Word r4_ __asm__(ARG_REG(4)) = 0;                                    \
        register seL4_Word r5_ __asm__(ARG_REG(5)) = 0;                                    \
        register seL4_Word r7_ __asm__(ARG_REG(7)) = (seL4_Word)(sys);                     \
        __asm__ volatile(".global " #label "\n" #label ":\n\t" TRAP                        \
                         : "+r"(r0_), "+r"(r1_), "+r"(r2_), "+r"(r3_), "+r"(r4_), "+r"(r5_) \
                         : "r"(r7_)                                                        \
                         : "memory");                                                      \
        (mr0) = r2_;                                                                       \
    } while (0)

/* ---- UnknownSyscall ---- */

extern const char unknown_syscall_at[], unknown_syscall_again[];
static volatile seL4_Word us_sp, us_regs[7], us_done;

#define UNKNOWN_SYSCALL ((seL4_Word)-99L)

/* Before the traps: sp into %[sp] (and on RISC-V ra = 0x7a7a, which the message shows). */
#if defined(__riscv)
#define US_SAVE_SP "mv %[sp], sp\n\tli ra, 0x7a7a\n"
#define US_CLOBBER "ra"
#else
#define US_SAVE_SP "mov %[sp], sp\n"
#define US_CLOBBER "cc"
#endif

/* Two unknown syscalls in a row with a0-a6 / x0-x6 = 0xa0..0xa6 (and ra = 0x7a7a). */
static void unknown_syscall_thread(void *arg)
{
    (void)arg;
    seL4_Word sp;
    register seL4_Word r0 __asm__(ARG_REG(0)) = 0xa0, r1 __asm__(ARG_REG(1)) = 0xa1;
    register seL4_Word r2 __asm__(ARG_REG(2)) = 0xa2, r3 __asm__(ARG_REG(3)) = 0xa3;
    register seL4_Word r4 __asm__(ARG_REG(4)) = 0xa4, r5 __asm__(ARG_REG(5)) = 0xa5;
    register seL4_Word r6 __asm__(ARG_REG(6)) = 0xa6, r7 __asm__(ARG_REG(7)) = UNKNOWN_SYSCALL;
    __asm__ volatile(US_SAVE_SP
                     ".global unknown_syscall_at\nunknown_syscall_at:\n\t" TRAP "\n"
                     ".global unknown_syscall_again\nunknown_syscall_again:\n\t" TRAP
                     : [sp] "=&r"(sp), "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4),
                       "+r"(r5), "+r"(r6)
                     : "r"(r7)
                     : "memory", US_CLOBBER);
    us_sp = sp;
    us_regs[0] = r0;
    us_regs[1] = r1;
    us_regs[2] = r2;
    us_regs[3] = r3;
    us_regs[4] = r4;
    us_regs[5] = r5;
    us_regs[6] = r6;
    us_done = 1;
}

static int unknown_syscall_fixed_by_reply(void)
{
    us_done = 0;
    EXPECT_PASS(start_faulter("unknown", unknown_syscall_thread, seL4_Fault_UnknownSyscall,
                              US_LENGTH));
    seL4_Word msg[US_LENGTH];
    for (int i = 0; i < US_LENGTH; i++) {
        msg[i] = seL4_GetMR(i);
    }
    EXPECT_EQ(msg[US_IP], (seL4_Word)unknown_syscall_at);
    for (int i = 0; i < 7; i++) {
        EXPECT_EQ(msg[US_A0 + i], 0xa0 + (seL4_Word)i);
    }
    EXPECT_EQ(msg[US_LENGTH - 1], UNKNOWN_SYSCALL);
#if defined(__riscv)
    EXPECT_EQ(msg[2], 0x7a7a); /* RA */
#else
    EXPECT_EQ(msg[7], UNKNOWN_SYSCALL);              /* X7 holds the number */
    EXPECT_EQ(msg[10], (seL4_Word)unknown_syscall_at + 4); /* LR = ELR_EL1, the next pc */
    seL4_Word first_spsr = msg[US_SPSR];
#endif
    /* Reply: skip the trap, a0 = 0x1111, a1 = 0x2222 (and on AArch64 an SPSR asking for
     * EL1h with every flag set: only the flags may stay). */
    for (int i = 0; i < US_REGS; i++) {
        seL4_SetMR(i, msg[i]);
    }
    seL4_SetMR(US_IP, msg[US_IP] + 4);
    seL4_SetMR(US_A0, 0x1111);
    seL4_SetMR(US_A0 + 1, 0x2222);
#if defined(__aarch64__)
    seL4_SetMR(US_SPSR, 0xf00003c5UL);
#endif
    seL4_MessageInfo_t info =
        seL4_ReplyRecv(fault_ep, seL4_MessageInfo_new(0, 0, 0, US_REGS), 0);
    /* The second unknown syscall, right after the first: the registers as written. */
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_UnknownSyscall);
    EXPECT_EQ(seL4_GetMR(US_IP), (seL4_Word)unknown_syscall_again);
    EXPECT_EQ(seL4_GetMR(US_A0), 0x1111);
    EXPECT_EQ(seL4_GetMR(US_A0 + 1), 0x2222);
    EXPECT_EQ(seL4_GetMR(US_A0 + 2), 0xa2);
    EXPECT_EQ(seL4_GetMR(US_SP), msg[US_SP]);
#if defined(__aarch64__)
    EXPECT_EQ(seL4_GetMR(US_SPSR), (first_spsr & 0x0fffffffUL) | 0xf0000000UL);
#endif
    /* A short reply writes only the registers it covers: up to A2 on RISC-V (A3 is
     * past it), up to FaultIP on AArch64 (SP is past it: a bad SP would crash). */
    for (int i = 0; i < US_REGS; i++) {
        seL4_SetMR(i, seL4_GetMR(i));
    }
    seL4_SetMR(US_IP, (seL4_Word)unknown_syscall_again + 4);
    seL4_SetMR(US_A0 + 2, 0x3333);
    seL4_SetMR(US_A0 + 3, 0x4444);
#if defined(__riscv)
    seL4_Word short_length = US_A0 + 3;
#else
    seL4_SetMR(US_SP, 8);
    seL4_Word short_length = US_IP + 1;
#endif
    EXPECT_PASS(reply_and_run_to_end(short_length, &us_done));
    EXPECT_EQ(us_sp, msg[US_SP]);
    EXPECT_EQ(us_regs[0], 0x1111);
    EXPECT_EQ(us_regs[1], 0x2222);
    EXPECT_EQ(us_regs[2], 0x3333);
#if defined(__riscv)
    EXPECT_EQ(us_regs[3], 0xa3);
#else
    EXPECT_EQ(us_regs[3], 0x4444);
#endif
    EXPECT_EQ(us_regs[6], 0xa6);
    return 0;
}

/* ---- UserException ---- */

extern const char illegal_at[], illegal_again[];
static volatile seL4_Word ue_sp, ue_progress;

static void illegal_thread(void *arg)
{
    (void)arg;
    seL4_Word sp;
    READ_SP(sp);
    ue_sp = sp;
    ue_progress = 1;
    __asm__ volatile(".global illegal_at\nillegal_at:\n\t" ILLEGAL_INSN ::: "memory");
    ue_progress = 2;
    __asm__ volatile(".global illegal_again\nillegal_again:\n\t" ILLEGAL_INSN ::: "memory");
    ue_progress = 3;
}

static int user_exception_fixed_by_reply(void)
{
    ue_progress = 0;
    EXPECT_PASS(start_faulter("illegal", illegal_thread, seL4_Fault_UserException, UE_LENGTH));
    EXPECT_EQ(ue_progress, 1);
    EXPECT_EQ(seL4_GetMR(0), (seL4_Word)illegal_at);
    EXPECT_EQ(seL4_GetMR(1), ue_sp);
    EXPECT_EQ(seL4_GetMR(UE_NUMBER), UE_NUMBER_ILLEGAL);
    EXPECT_EQ(seL4_GetMR(UE_NUMBER + 1), 0); /* Code */
    /* Label 0, FaultIP past the instruction: the thread resumes there. */
    seL4_SetMR(0, (seL4_Word)illegal_at + ILLEGAL_SIZE);
    seL4_MessageInfo_t info = seL4_ReplyRecv(fault_ep, seL4_MessageInfo_new(0, 0, 0, 1), 0);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_UserException);
    EXPECT_EQ(ue_progress, 2);
    EXPECT_EQ(seL4_GetMR(0), (seL4_Word)illegal_again);
    /* A non-zero label: the registers are written but the thread stays stopped. */
    seL4_SetMR(0, (seL4_Word)illegal_again + ILLEGAL_SIZE);
    seL4_Reply(seL4_MessageInfo_new(1, 0, 0, 1));
    seL4_Yield();
    EXPECT_EQ(ue_progress, 2);
    seL4_UserContext regs;
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, 1, &regs));
    EXPECT_EQ(regs.pc, (seL4_Word)illegal_again + ILLEGAL_SIZE);
    /* Resume restarts it there. */
    EXPECT_OK(seL4_TCB_Resume(threads[0].tcb));
    seL4_Yield();
    EXPECT_EQ(ue_progress, 3);
    return 0;
}

/* ---- CapFault ---- */

extern const char cap_recv_at[], cap_call_at[];
static seL4_CPtr empty_slot;
static volatile seL4_Word cf_mr0, cf_badge, cf_done;

static void cap_fault_thread(void *arg)
{
    (void)arg;
    seL4_Word mr0;
    /* Recv on an empty slot: a cap fault in the receive phase. */
    LABELLED_SYSCALL(cap_recv_at, seL4_SysRecv, empty_slot, mr0);
    cf_mr0 = mr0;
    /* Call through a CPtr the root CNode's guard does not match. */
    LABELLED_SYSCALL(cap_call_at, seL4_SysCall, 1UL << 63, mr0);
    cf_badge = mr0;
    cf_done = 1;
}

static int cap_faults_delivered_and_fixed(void)
{
    cf_done = 0;
    empty_slot = alloc_slot();
    EXPECT_PASS(start_faulter("capfault", cap_fault_thread, seL4_Fault_CapFault, 5));
    EXPECT_EQ(seL4_GetMR(0), (seL4_Word)cap_recv_at);
    EXPECT_EQ(seL4_GetMR(1), empty_slot);
    EXPECT_EQ(seL4_GetMR(2), 1); /* InRecvPhase */
    EXPECT_EQ(seL4_GetMR(3), seL4_MissingCapability);
    EXPECT_EQ(seL4_GetMR(4), 0); /* bitsLeft */
    /* Fix: put an endpoint cap in the slot; the reply restarts the Recv, now on it. */
    seL4_CPtr ep;
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_OK(seL4_CNode_Copy(ROOT, empty_slot, DEPTH, ROOT, ep, DEPTH, seL4_AllRights));
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 0));
    seL4_SetMR(0, 0x99);
    seL4_Send(ep, seL4_MessageInfo_new(0, 0, 0, 1)); /* blocks until it receives */

    seL4_MessageInfo_t info;
    EXPECT_FAULT(info, seL4_Fault_CapFault, 7);
    EXPECT_EQ(cf_mr0, 0x99);
    unsigned long radix = seL4_GetBootInfo()->initThreadCNodeSizeBits;
    EXPECT_EQ(seL4_GetMR(0), (seL4_Word)cap_call_at);
    EXPECT_EQ(seL4_GetMR(1), 1UL << 63);
    EXPECT_EQ(seL4_GetMR(2), 0);
    EXPECT_EQ(seL4_GetMR(3), seL4_GuardMismatch);
    EXPECT_EQ(seL4_GetMR(4), 64);          /* bitsLeft */
    EXPECT_EQ(seL4_GetMR(5), 0);           /* the guard found in the CNode cap */
    EXPECT_EQ(seL4_GetMR(6), 64 - radix);  /* its size */
    /* Fix: point the thread's cap register at a badged endpoint cap, then restart. */
    seL4_CPtr badged = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, badged, DEPTH, ROOT, ep, DEPTH, seL4_AllRights, 0x5b));
    EXPECT_PASS(set_pc_and_arg0((seL4_Word)cap_call_at, (seL4_Word)cap_call_at, badged));
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 0));
    seL4_Word badge;
    seL4_Recv(ep, &badge); /* the restarted Call arrives */
    EXPECT_EQ(badge, 0x5b);
    seL4_SetMR(0, badge + 1);
    EXPECT_PASS(reply_and_run_to_end(1, &cf_done));
    EXPECT_EQ(cf_badge, 0x5c);
    return 0;
}

/* ---- VMFault ---- */

extern const char vm_load_at[];
static volatile seL4_Word vm_loaded, vm_returned, vm_done;
typedef seL4_Word (*word_fn)(void);
static word_fn volatile unmapped_fn = (word_fn)UNMAPPED;

static void vm_fault_thread(void *arg)
{
    (void)arg;
    register seL4_Word r0 __asm__(ARG_REG(0)) = UNMAPPED;
#if defined(__riscv)
    __asm__ volatile(".option push\n.option norvc\n"
                     ".global vm_load_at\nvm_load_at:\n\tld a0, 0(a0)\n"
                     ".option pop"
                     : "+r"(r0)
                     :
                     : "memory");
#else
    __asm__ volatile(".global vm_load_at\nvm_load_at:\n\tldr x0, [x0]" : "+r"(r0) : : "memory");
#endif
    vm_loaded = r0;
    vm_returned = unmapped_fn();
    vm_done = 1;
}

static int vm_faults_fixed_with_write_registers(void)
{
    vm_done = 0;
    EXPECT_PASS(start_faulter("vmfault", vm_fault_thread, seL4_Fault_VMFault, 4));
    EXPECT_EQ(seL4_GetMR(0), (seL4_Word)vm_load_at);
    EXPECT_EQ(seL4_GetMR(1), UNMAPPED);
    EXPECT_EQ(seL4_GetMR(2), 0); /* a data access */
    seL4_Word fsr = seL4_GetMR(3);
#if defined(__riscv)
    EXPECT_EQ(fsr, VM_FSR_LOAD);
#else
    EXPECT_EQ(fsr >> 26, 0x24);      /* EC: data abort from a lower exception level */
    EXPECT_EQ((fsr >> 6) & 1, 0);    /* WnR: a read */
    EXPECT_EQ(fsr & 0x3c, 0x04);     /* DFSC: translation fault */
#endif
    /* A reply alone would run the load again: skip it and supply the value. */
    EXPECT_PASS(set_pc_and_arg0((seL4_Word)vm_load_at, (seL4_Word)vm_load_at + 4, 0x5a5a));
    /* Then the call to an unmapped address: an instruction fetch fault. */
    seL4_MessageInfo_t info = seL4_ReplyRecv(fault_ep, seL4_MessageInfo_new(0, 0, 0, 0), 0);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_VMFault);
    EXPECT_EQ(vm_loaded, 0x5a5a);
    EXPECT_EQ(seL4_GetMR(0), UNMAPPED);
    EXPECT_EQ(seL4_GetMR(1), UNMAPPED);
    EXPECT_EQ(seL4_GetMR(2), 1); /* PrefetchFault */
#if defined(__riscv)
    EXPECT_EQ(seL4_GetMR(3), VM_FSR_FETCH);
#else
    EXPECT_EQ(seL4_GetMR(3) >> 26, 0x20); /* EC: instruction abort from a lower EL */
    EXPECT_EQ(seL4_GetMR(3) & 0x3c, 0x04);
#endif
    /* Return from the "call" with 0x77: pc = the return address. */
    EXPECT_PASS(set_pc_and_arg0(UNMAPPED, RETURN_ADDRESS, 0x77));
    EXPECT_PASS(reply_and_run_to_end(0, &vm_done));
    EXPECT_EQ(vm_returned, 0x77);
    return 0;
}

/* ---- no handler ---- */

extern const char orphan_illegal_at[];
static volatile int orphan_after, bystander_ran;

static void orphan_thread(void *arg)
{
    (void)arg;
    __asm__ volatile(".global orphan_illegal_at\norphan_illegal_at:\n\t" ILLEGAL_INSN
                     ::: "memory");
    orphan_after = 1;
}

static void bystander_thread(void *arg)
{
    (void)arg;
    seL4_Yield(); /* the orphan faults meanwhile */
    bystander_ran = 1;
}

static int fault_without_handler_stops_only_that_thread(void)
{
    orphan_after = 0;
    bystander_ran = 0;
    /* thread_create leaves the fault endpoint CPtr 0: the null slot, no handler. */
    EXPECT_OK(make(0, "orphan", orphan_thread, 0, 255));
    EXPECT_OK(make(1, "bystander", bystander_thread, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(thread_start(&threads[1]));
    seL4_Yield();
    seL4_Yield();
    EXPECT_EQ(bystander_ran, 1);
    EXPECT_EQ(orphan_after, 0);
    seL4_UserContext regs;
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, 1, &regs));
    EXPECT_EQ(regs.pc, (seL4_Word)orphan_illegal_at);
    return 0;
}

static const struct check checks[] = {
    {"IPCFLT0001", "UnknownSyscall: message layout, a reply writes registers and resumes",
     unknown_syscall_fixed_by_reply},
    {"IPCFLT0002", "UserException: a reply past the instruction resumes; label != 0 stops",
     user_exception_fixed_by_reply},
    {"IPCFLT0003", "CapFault in receive and send phase, fixed and restarted",
     cap_faults_delivered_and_fixed},
    {"IPCFLT0004", "VMFault on a load and a fetch, fixed with WriteRegisters",
     vm_faults_fixed_with_write_registers},
    {"IPCFLT0005", "A fault without a handler stops only that thread",
     fault_without_handler_stops_only_that_thread},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
