/*
 * capsule libsel4: the RISC-V 64 trap primitives.
 *
 * Convention (abi/syscalls.md): `ecall`; syscall number in a7; cap in a0; msginfo in
 * a1; MR0-MR3 in a2-a5. The kernel writes back a0 (badge), a1 (msginfo) and a2-a5
 * (MR0-MR3) on the receive side and leaves every other register alone, so the
 * primitives below name exactly those registers and clobber only memory (the kernel
 * reads and writes the IPC buffer).
 */
#ifndef SEL4_SYSCALLS_RISCV64_H
#define SEL4_SYSCALLS_RISCV64_H

#include <sel4/types.h>

/* Six argument registers in and out: a0, a1, a2-a5. */
static inline void capsule_arch_syscall6(seL4_Word sys, seL4_Word *io0, seL4_Word *io1,
                                         seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2,
                                         seL4_Word *mr3)
{
    register seL4_Word a0 __asm__("a0") = *io0;
    register seL4_Word a1 __asm__("a1") = *io1;
    register seL4_Word a2 __asm__("a2") = *mr0;
    register seL4_Word a3 __asm__("a3") = *mr1;
    register seL4_Word a4 __asm__("a4") = *mr2;
    register seL4_Word a5 __asm__("a5") = *mr3;
    register seL4_Word a7 __asm__("a7") = sys;
    __asm__ volatile("ecall"
                     : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5)
                     : "r"(a7)
                     : "memory");
    *io0 = a0;
    *io1 = a1;
    *mr0 = a2;
    *mr1 = a3;
    *mr2 = a4;
    *mr3 = a5;
}

/* MCS: the six registers of capsule_arch_syscall6 plus the reply-object register
 * (a6, also NBSendWait's destination) and NBSendRecv's destination register
 * (t0); the kernel only reads those two. */
static inline void capsule_arch_syscall_mcs(seL4_Word sys, seL4_Word *io0, seL4_Word *io1,
                                            seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2,
                                            seL4_Word *mr3, seL4_Word reply, seL4_Word dest)
{
    register seL4_Word r0 __asm__("a0") = *io0;
    register seL4_Word r1 __asm__("a1") = *io1;
    register seL4_Word r2 __asm__("a2") = *mr0;
    register seL4_Word r3 __asm__("a3") = *mr1;
    register seL4_Word r4 __asm__("a4") = *mr2;
    register seL4_Word r5 __asm__("a5") = *mr3;
    register seL4_Word rr __asm__("a6") = reply;
    register seL4_Word rd __asm__("t0") = dest;
    register seL4_Word rs __asm__("a7") = sys;
    __asm__ volatile("ecall"
                     : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5)
                     : "r"(rr), "r"(rd), "r"(rs)
                     : "memory");
    *io0 = r0;
    *io1 = r1;
    *mr0 = r2;
    *mr1 = r3;
    *mr2 = r4;
    *mr3 = r5;
}

/* a0 and a1 in and out; returns a0. */
static inline seL4_Word capsule_arch_syscall2(seL4_Word sys, seL4_Word arg0, seL4_Word arg1)
{
    register seL4_Word a0 __asm__("a0") = arg0;
    register seL4_Word a1 __asm__("a1") = arg1;
    register seL4_Word a7 __asm__("a7") = sys;
    __asm__ volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a7) : "memory");
    return a0;
}

/* No argument registers. */
static inline void capsule_arch_syscall0(seL4_Word sys)
{
    register seL4_Word a7 __asm__("a7") = sys;
    __asm__ volatile("ecall" : : "r"(a7) : "memory");
}

#endif /* SEL4_SYSCALLS_RISCV64_H */
