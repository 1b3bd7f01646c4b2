/*
 * capsule libsel4: the AArch64 trap primitives.
 *
 * Convention (abi/syscalls.md): `svc #0`; syscall number in x7; cap in x0; msginfo in
 * x1; MR0-MR3 in x2-x5. The kernel writes back x0 (badge), x1 (msginfo) and x2-x5
 * (MR0-MR3) on the receive side and leaves every other register alone, so the
 * primitives below name exactly those registers and clobber only memory (the kernel
 * reads and writes the IPC buffer).
 */
#ifndef SEL4_SYSCALLS_AARCH64_H
#define SEL4_SYSCALLS_AARCH64_H

#include <sel4/types.h>

/* Six argument registers in and out: x0, x1, x2-x5. */
static inline void capsule_arch_syscall6(seL4_Word sys, seL4_Word *io0, seL4_Word *io1,
                                         seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2,
                                         seL4_Word *mr3)
{
    register seL4_Word x0 __asm__("x0") = *io0;
    register seL4_Word x1 __asm__("x1") = *io1;
    register seL4_Word x2 __asm__("x2") = *mr0;
    register seL4_Word x3 __asm__("x3") = *mr1;
    register seL4_Word x4 __asm__("x4") = *mr2;
    register seL4_Word x5 __asm__("x5") = *mr3;
    register seL4_Word x7 __asm__("x7") = sys;
    __asm__ volatile("svc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5)
                     : "r"(x7)
                     : "memory");
    *io0 = x0;
    *io1 = x1;
    *mr0 = x2;
    *mr1 = x3;
    *mr2 = x4;
    *mr3 = x5;
}

/* MCS: the six registers of capsule_arch_syscall6 plus the reply-object register
 * (x6, also NBSendWait's destination) and NBSendRecv's destination register
 * (x8); the kernel only reads those two. */
static inline void capsule_arch_syscall_mcs(seL4_Word sys, seL4_Word *io0, seL4_Word *io1,
                                            seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2,
                                            seL4_Word *mr3, seL4_Word reply, seL4_Word dest)
{
    register seL4_Word r0 __asm__("x0") = *io0;
    register seL4_Word r1 __asm__("x1") = *io1;
    register seL4_Word r2 __asm__("x2") = *mr0;
    register seL4_Word r3 __asm__("x3") = *mr1;
    register seL4_Word r4 __asm__("x4") = *mr2;
    register seL4_Word r5 __asm__("x5") = *mr3;
    register seL4_Word rr __asm__("x6") = reply;
    register seL4_Word rd __asm__("x8") = dest;
    register seL4_Word rs __asm__("x7") = sys;
    __asm__ volatile("svc #0"
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

/* x0 and x1 in and out; returns x0. */
static inline seL4_Word capsule_arch_syscall2(seL4_Word sys, seL4_Word arg0, seL4_Word arg1)
{
    register seL4_Word x0 __asm__("x0") = arg0;
    register seL4_Word x1 __asm__("x1") = arg1;
    register seL4_Word x7 __asm__("x7") = sys;
    __asm__ volatile("svc #0" : "+r"(x0), "+r"(x1) : "r"(x7) : "memory");
    return x0;
}

/* No argument registers. */
static inline void capsule_arch_syscall0(seL4_Word sys)
{
    register seL4_Word x7 __asm__("x7") = sys;
    __asm__ volatile("svc #0" : : "r"(x7) : "memory");
}

#endif /* SEL4_SYSCALLS_AARCH64_H */
