/*
 * capsule libsel4: the seL4 system calls, with libsel4's names and signatures, in the
 * non-MCS configuration or, with CONFIG_KERNEL_MCS defined, the MCS one (reply objects,
 * Wait / NBWait, NBSendRecv / NBSendWait; no Reply).
 *
 * Each call is written once here on top of three trap primitives that the architecture
 * header supplies (capsule_arch_syscall6/2/0 in sel4/syscalls_<arch>.h).
 *
 * Message registers: MR0-MR3 travel in registers. The plain calls take them from the
 * IPC buffer's msg[0..3] before the trap and, on the receiving side, store the returned
 * registers into msg[0..3], so seL4_GetMR(i) works for every i. The *WithMRs variants
 * take and return MR0-MR3 through pointers instead and leave the buffer's msg[0..3]
 * untouched; a NULL pointer means "not used" (0 is sent, the result is dropped).
 */
#ifndef SEL4_SYSCALLS_H
#define SEL4_SYSCALLS_H

#include <sel4/types.h>
#include <sel4/functions.h>
#include <sel4/capsule.h>

#if defined(__riscv)
#include <sel4/syscalls_riscv64.h>
#elif defined(__aarch64__)
#include <sel4/syscalls_aarch64.h>
#else
#error "capsule libsel4: unsupported architecture"
#endif

#define CAPSULE_SYS(n) ((seL4_Word)(seL4_Int64)(n))

/* ---- internal helpers ---- */

/* MR i for sending: from *mr if given and inside the message, else 0. */
static inline seL4_Word capsule_mr_in(seL4_Word *mr, seL4_MessageInfo_t info, int i)
{
    return (mr != seL4_Null && seL4_MessageInfo_get_length(info) > (seL4_Uint64)i) ? *mr : 0;
}

static inline void capsule_mr_out(seL4_Word *mr, seL4_Word value)
{
    if (mr != seL4_Null) {
        *mr = value;
    }
}

/* Trap with MR0-MR3 taken from and returned to the IPC buffer. */
static inline seL4_MessageInfo_t capsule_ipc_buffer_call(seL4_Word sys, seL4_Word *cap,
                                                         seL4_MessageInfo_t info)
{
    seL4_Word mi = info.words[0];
    seL4_Word m0 = seL4_GetMR(0), m1 = seL4_GetMR(1), m2 = seL4_GetMR(2), m3 = seL4_GetMR(3);
    capsule_arch_syscall6(sys, cap, &mi, &m0, &m1, &m2, &m3);
    seL4_SetMR(0, m0);
    seL4_SetMR(1, m1);
    seL4_SetMR(2, m2);
    seL4_SetMR(3, m3);
    seL4_MessageInfo_t out = {{mi}};
    return out;
}

/* Trap with MR0-MR3 taken from and returned through pointers. */
static inline seL4_MessageInfo_t capsule_pointer_call(seL4_Word sys, seL4_Word *cap,
                                                      seL4_MessageInfo_t info, seL4_Word *mr0,
                                                      seL4_Word *mr1, seL4_Word *mr2,
                                                      seL4_Word *mr3)
{
    seL4_Word mi = info.words[0];
    seL4_Word m0 = capsule_mr_in(mr0, info, 0), m1 = capsule_mr_in(mr1, info, 1);
    seL4_Word m2 = capsule_mr_in(mr2, info, 2), m3 = capsule_mr_in(mr3, info, 3);
    capsule_arch_syscall6(sys, cap, &mi, &m0, &m1, &m2, &m3);
    capsule_mr_out(mr0, m0);
    capsule_mr_out(mr1, m1);
    capsule_mr_out(mr2, m2);
    capsule_mr_out(mr3, m3);
    seL4_MessageInfo_t out = {{mi}};
    return out;
}

/* Send side only: MR0-MR3 from the IPC buffer, nothing comes back. */
static inline void capsule_send(seL4_Word sys, seL4_CPtr dest, seL4_MessageInfo_t info)
{
    seL4_Word cap = dest, mi = info.words[0];
    seL4_Word m0 = seL4_GetMR(0), m1 = seL4_GetMR(1), m2 = seL4_GetMR(2), m3 = seL4_GetMR(3);
    capsule_arch_syscall6(sys, &cap, &mi, &m0, &m1, &m2, &m3);
}

/* ---- send ---- */

static inline void seL4_Send(seL4_CPtr dest, seL4_MessageInfo_t msgInfo)
{
    capsule_send(CAPSULE_SYS(seL4_SysSend), dest, msgInfo);
}

static inline void seL4_SendWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_Word *mr0,
                                    seL4_Word *mr1, seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_Word cap = dest;
    seL4_Word m0 = capsule_mr_in(mr0, msgInfo, 0), m1 = capsule_mr_in(mr1, msgInfo, 1);
    seL4_Word m2 = capsule_mr_in(mr2, msgInfo, 2), m3 = capsule_mr_in(mr3, msgInfo, 3);
    seL4_Word mi = msgInfo.words[0];
    capsule_arch_syscall6(CAPSULE_SYS(seL4_SysSend), &cap, &mi, &m0, &m1, &m2, &m3);
}

static inline void seL4_NBSend(seL4_CPtr dest, seL4_MessageInfo_t msgInfo)
{
    capsule_send(CAPSULE_SYS(seL4_SysNBSend), dest, msgInfo);
}

static inline void seL4_NBSendWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo, seL4_Word *mr0,
                                      seL4_Word *mr1, seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_Word cap = dest;
    seL4_Word m0 = capsule_mr_in(mr0, msgInfo, 0), m1 = capsule_mr_in(mr1, msgInfo, 1);
    seL4_Word m2 = capsule_mr_in(mr2, msgInfo, 2), m3 = capsule_mr_in(mr3, msgInfo, 3);
    seL4_Word mi = msgInfo.words[0];
    capsule_arch_syscall6(CAPSULE_SYS(seL4_SysNBSend), &cap, &mi, &m0, &m1, &m2, &m3);
}

/* Signal a notification: a Send with an empty message. */
static inline void seL4_Signal(seL4_CPtr dest)
{
    seL4_Word cap = dest, mi = 0, m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    capsule_arch_syscall6(CAPSULE_SYS(seL4_SysSend), &cap, &mi, &m0, &m1, &m2, &m3);
}

#if !defined(CONFIG_KERNEL_MCS)
/* Reply through the caller slot (non-MCS). */
static inline void seL4_Reply(seL4_MessageInfo_t msgInfo)
{
    capsule_send(CAPSULE_SYS(seL4_SysReply), 0, msgInfo);
}

static inline void seL4_ReplyWithMRs(seL4_MessageInfo_t msgInfo, seL4_Word *mr0, seL4_Word *mr1,
                                     seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_Word cap = 0;
    seL4_Word m0 = capsule_mr_in(mr0, msgInfo, 0), m1 = capsule_mr_in(mr1, msgInfo, 1);
    seL4_Word m2 = capsule_mr_in(mr2, msgInfo, 2), m3 = capsule_mr_in(mr3, msgInfo, 3);
    seL4_Word mi = msgInfo.words[0];
    capsule_arch_syscall6(CAPSULE_SYS(seL4_SysReply), &cap, &mi, &m0, &m1, &m2, &m3);
}
#endif /* !CONFIG_KERNEL_MCS */

/* ---- receive ---- */

static inline seL4_MessageInfo_t capsule_recv(seL4_Word sys, seL4_CPtr src, seL4_Word *sender)
{
    seL4_Word cap = src;
    seL4_MessageInfo_t empty = {{0}};
    seL4_Word mi = empty.words[0], m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    capsule_arch_syscall6(sys, &cap, &mi, &m0, &m1, &m2, &m3);
    seL4_SetMR(0, m0);
    seL4_SetMR(1, m1);
    seL4_SetMR(2, m2);
    seL4_SetMR(3, m3);
    capsule_mr_out(sender, cap);
    seL4_MessageInfo_t out = {{mi}};
    return out;
}

static inline seL4_MessageInfo_t capsule_recv_mrs(seL4_Word sys, seL4_CPtr src, seL4_Word *sender,
                                                  seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2,
                                                  seL4_Word *mr3)
{
    seL4_Word cap = src, mi = 0, m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    capsule_arch_syscall6(sys, &cap, &mi, &m0, &m1, &m2, &m3);
    capsule_mr_out(mr0, m0);
    capsule_mr_out(mr1, m1);
    capsule_mr_out(mr2, m2);
    capsule_mr_out(mr3, m3);
    capsule_mr_out(sender, cap);
    seL4_MessageInfo_t out = {{mi}};
    return out;
}

#if defined(CONFIG_KERNEL_MCS)

/* MCS receive: the reply object in a6 / x6 (0 for none: Wait / NBWait pass none). */
static inline seL4_MessageInfo_t capsule_recv_mcs(seL4_Word sys, seL4_CPtr src, seL4_Word *sender,
                                                  seL4_Word *mr0, seL4_Word *mr1, seL4_Word *mr2,
                                                  seL4_Word *mr3, seL4_CPtr reply)
{
    seL4_Word cap = src, mi = 0, m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    capsule_arch_syscall_mcs(sys, &cap, &mi, &m0, &m1, &m2, &m3, reply, 0);
    if (mr0 == seL4_Null && mr1 == seL4_Null && mr2 == seL4_Null && mr3 == seL4_Null) {
        seL4_SetMR(0, m0);
        seL4_SetMR(1, m1);
        seL4_SetMR(2, m2);
        seL4_SetMR(3, m3);
    }
    capsule_mr_out(mr0, m0);
    capsule_mr_out(mr1, m1);
    capsule_mr_out(mr2, m2);
    capsule_mr_out(mr3, m3);
    capsule_mr_out(sender, cap);
    seL4_MessageInfo_t out = {{mi}};
    return out;
}

/* MCS send then receive in one trap: MR0-MR3 from the IPC buffer (mr == NULL) or the
 * pointers, and back the same way. */
static inline seL4_MessageInfo_t capsule_send_recv_mcs(seL4_Word sys, seL4_CPtr src,
                                                       seL4_MessageInfo_t info, seL4_Word *sender,
                                                       seL4_Word **mrs, seL4_CPtr reply,
                                                       seL4_CPtr dest)
{
    seL4_Word cap = src, mi = info.words[0], m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = mrs == seL4_Null ? seL4_GetMR(i) : capsule_mr_in(mrs[i], info, i);
    }
    capsule_arch_syscall_mcs(sys, &cap, &mi, &m[0], &m[1], &m[2], &m[3], reply, dest);
    for (int i = 0; i < 4; i++) {
        if (mrs == seL4_Null) {
            seL4_SetMR(i, m[i]);
        } else {
            capsule_mr_out(mrs[i], m[i]);
        }
    }
    capsule_mr_out(sender, cap);
    seL4_MessageInfo_t out = {{mi}};
    return out;
}

static inline seL4_MessageInfo_t seL4_Recv(seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysRecv), src, sender, seL4_Null, seL4_Null,
                            seL4_Null, seL4_Null, reply);
}

static inline seL4_MessageInfo_t seL4_RecvWithMRs(seL4_CPtr src, seL4_Word *sender,
                                                  seL4_Word *mr0, seL4_Word *mr1,
                                                  seL4_Word *mr2, seL4_Word *mr3,
                                                  seL4_CPtr reply)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysRecv), src, sender, mr0, mr1, mr2, mr3, reply);
}

static inline seL4_MessageInfo_t seL4_NBRecv(seL4_CPtr src, seL4_Word *sender, seL4_CPtr reply)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysNBRecv), src, sender, seL4_Null, seL4_Null,
                            seL4_Null, seL4_Null, reply);
}

static inline seL4_MessageInfo_t seL4_NBRecvWithMRs(seL4_CPtr src, seL4_Word *sender,
                                                    seL4_Word *mr0, seL4_Word *mr1,
                                                    seL4_Word *mr2, seL4_Word *mr3,
                                                    seL4_CPtr reply)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysNBRecv), src, sender, mr0, mr1, mr2, mr3, reply);
}

/* MCS: waiting on a notification (or an endpoint, without a reply object). */
static inline seL4_MessageInfo_t seL4_Wait(seL4_CPtr src, seL4_Word *sender)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysWait), src, sender, seL4_Null, seL4_Null,
                            seL4_Null, seL4_Null, 0);
}

static inline seL4_MessageInfo_t seL4_WaitWithMRs(seL4_CPtr src, seL4_Word *sender,
                                                  seL4_Word *mr0, seL4_Word *mr1,
                                                  seL4_Word *mr2, seL4_Word *mr3)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysWait), src, sender, mr0, mr1, mr2, mr3, 0);
}

static inline seL4_MessageInfo_t seL4_NBWait(seL4_CPtr src, seL4_Word *sender)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysNBWait), src, sender, seL4_Null, seL4_Null,
                            seL4_Null, seL4_Null, 0);
}

static inline seL4_MessageInfo_t seL4_NBWaitWithMRs(seL4_CPtr src, seL4_Word *sender,
                                                    seL4_Word *mr0, seL4_Word *mr1,
                                                    seL4_Word *mr2, seL4_Word *mr3)
{
    return capsule_recv_mcs(CAPSULE_SYS(seL4_SysNBWait), src, sender, mr0, mr1, mr2, mr3, 0);
}

static inline seL4_MessageInfo_t seL4_Poll(seL4_CPtr src, seL4_Word *sender)
{
    return seL4_NBWait(src, sender);
}

/* The reply is a send on the reply object in a6 / x6, then a receive on src. */
static inline seL4_MessageInfo_t seL4_ReplyRecv(seL4_CPtr src, seL4_MessageInfo_t msgInfo,
                                                seL4_Word *sender, seL4_CPtr reply)
{
    return capsule_send_recv_mcs(CAPSULE_SYS(seL4_SysReplyRecv), src, msgInfo, sender,
                                 seL4_Null, reply, 0);
}

static inline seL4_MessageInfo_t seL4_ReplyRecvWithMRs(seL4_CPtr src, seL4_MessageInfo_t msgInfo,
                                                       seL4_Word *sender, seL4_Word *mr0,
                                                       seL4_Word *mr1, seL4_Word *mr2,
                                                       seL4_Word *mr3, seL4_CPtr reply)
{
    seL4_Word *mrs[4] = {mr0, mr1, mr2, mr3};
    return capsule_send_recv_mcs(CAPSULE_SYS(seL4_SysReplyRecv), src, msgInfo, sender, mrs,
                                 reply, 0);
}

/* A non-blocking send to dest (t0 / x8), then a receive on src with a reply object. */
static inline seL4_MessageInfo_t seL4_NBSendRecv(seL4_CPtr dest, seL4_MessageInfo_t msgInfo,
                                                 seL4_CPtr src, seL4_Word *sender,
                                                 seL4_CPtr reply)
{
    return capsule_send_recv_mcs(CAPSULE_SYS(seL4_SysNBSendRecv), src, msgInfo, sender,
                                 seL4_Null, reply, dest);
}

static inline seL4_MessageInfo_t seL4_NBSendRecvWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo,
                                                        seL4_CPtr src, seL4_Word *sender,
                                                        seL4_Word *mr0, seL4_Word *mr1,
                                                        seL4_Word *mr2, seL4_Word *mr3,
                                                        seL4_CPtr reply)
{
    seL4_Word *mrs[4] = {mr0, mr1, mr2, mr3};
    return capsule_send_recv_mcs(CAPSULE_SYS(seL4_SysNBSendRecv), src, msgInfo, sender, mrs,
                                 reply, dest);
}

/* A non-blocking send to dest (a6 / x6, the reply register), then a wait on src. */
static inline seL4_MessageInfo_t seL4_NBSendWait(seL4_CPtr dest, seL4_MessageInfo_t msgInfo,
                                                 seL4_CPtr src, seL4_Word *sender)
{
    return capsule_send_recv_mcs(CAPSULE_SYS(seL4_SysNBSendWait), src, msgInfo, sender,
                                 seL4_Null, dest, 0);
}

static inline seL4_MessageInfo_t seL4_NBSendWaitWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo,
                                                        seL4_CPtr src, seL4_Word *sender,
                                                        seL4_Word *mr0, seL4_Word *mr1,
                                                        seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_Word *mrs[4] = {mr0, mr1, mr2, mr3};
    return capsule_send_recv_mcs(CAPSULE_SYS(seL4_SysNBSendWait), src, msgInfo, sender, mrs,
                                 dest, 0);
}

#else /* !CONFIG_KERNEL_MCS */

static inline seL4_MessageInfo_t seL4_Recv(seL4_CPtr src, seL4_Word *sender)
{
    return capsule_recv(CAPSULE_SYS(seL4_SysRecv), src, sender);
}

static inline seL4_MessageInfo_t seL4_RecvWithMRs(seL4_CPtr src, seL4_Word *sender,
                                                  seL4_Word *mr0, seL4_Word *mr1,
                                                  seL4_Word *mr2, seL4_Word *mr3)
{
    return capsule_recv_mrs(CAPSULE_SYS(seL4_SysRecv), src, sender, mr0, mr1, mr2, mr3);
}

static inline seL4_MessageInfo_t seL4_NBRecv(seL4_CPtr src, seL4_Word *sender)
{
    return capsule_recv(CAPSULE_SYS(seL4_SysNBRecv), src, sender);
}

static inline seL4_MessageInfo_t seL4_NBRecvWithMRs(seL4_CPtr src, seL4_Word *sender,
                                                    seL4_Word *mr0, seL4_Word *mr1,
                                                    seL4_Word *mr2, seL4_Word *mr3)
{
    return capsule_recv_mrs(CAPSULE_SYS(seL4_SysNBRecv), src, sender, mr0, mr1, mr2, mr3);
}

/* Non-MCS: waiting on a notification is a Recv on it. */
static inline void seL4_Wait(seL4_CPtr src, seL4_Word *sender)
{
    seL4_Recv(src, sender);
}

static inline seL4_MessageInfo_t seL4_Poll(seL4_CPtr src, seL4_Word *sender)
{
    return seL4_NBRecv(src, sender);
}

static inline seL4_MessageInfo_t seL4_ReplyRecv(seL4_CPtr src, seL4_MessageInfo_t msgInfo,
                                                seL4_Word *sender)
{
    seL4_Word cap = src;
    seL4_MessageInfo_t out = capsule_ipc_buffer_call(CAPSULE_SYS(seL4_SysReplyRecv), &cap, msgInfo);
    capsule_mr_out(sender, cap);
    return out;
}

static inline seL4_MessageInfo_t seL4_ReplyRecvWithMRs(seL4_CPtr src, seL4_MessageInfo_t msgInfo,
                                                       seL4_Word *sender, seL4_Word *mr0,
                                                       seL4_Word *mr1, seL4_Word *mr2,
                                                       seL4_Word *mr3)
{
    seL4_Word cap = src;
    seL4_MessageInfo_t out =
        capsule_pointer_call(CAPSULE_SYS(seL4_SysReplyRecv), &cap, msgInfo, mr0, mr1, mr2, mr3);
    capsule_mr_out(sender, cap);
    return out;
}

#endif /* CONFIG_KERNEL_MCS */

/* ---- send and receive ---- */

static inline seL4_MessageInfo_t seL4_Call(seL4_CPtr dest, seL4_MessageInfo_t msgInfo)
{
    seL4_Word cap = dest;
    return capsule_ipc_buffer_call(CAPSULE_SYS(seL4_SysCall), &cap, msgInfo);
}

static inline seL4_MessageInfo_t seL4_CallWithMRs(seL4_CPtr dest, seL4_MessageInfo_t msgInfo,
                                                  seL4_Word *mr0, seL4_Word *mr1,
                                                  seL4_Word *mr2, seL4_Word *mr3)
{
    seL4_Word cap = dest;
    return capsule_pointer_call(CAPSULE_SYS(seL4_SysCall), &cap, msgInfo, mr0, mr1, mr2, mr3);
}

/* ---- scheduling ---- */

static inline void seL4_Yield(void)
{
    capsule_arch_syscall0(CAPSULE_SYS(seL4_SysYield));
}

/* ---- debug ---- */

static inline void seL4_DebugPutChar(char c)
{
    capsule_arch_syscall2(CAPSULE_SYS(seL4_SysDebugPutChar), (seL4_Word)(unsigned char)c, 0);
}

static inline void seL4_DebugPutString(char *str)
{
    for (; *str != '\0'; str++) {
        seL4_DebugPutChar(*str);
    }
}

static inline void seL4_DebugDumpScheduler(void)
{
    capsule_arch_syscall0(CAPSULE_SYS(seL4_SysDebugDumpScheduler));
}

/* Stop the system. The kernel reports exit status 0 (see sel4/capsule.h for a status). */
static inline void seL4_DebugHalt(void)
{
    capsule_arch_syscall2(CAPSULE_SYS(seL4_SysDebugHalt), 0, 0);
}

static inline void seL4_DebugSnapshot(void)
{
    capsule_arch_syscall0(CAPSULE_SYS(seL4_SysDebugSnapshot));
}

/* The kernel's tag for the cap at `cap` (CAPSULE_CAPTAG_*), 0 if the lookup fails. */
static inline seL4_Uint32 seL4_DebugCapIdentify(seL4_CPtr cap)
{
    return (seL4_Uint32)capsule_arch_syscall2(CAPSULE_SYS(seL4_SysDebugCapIdentify), cap, 0);
}

/* The name goes NUL-terminated into the IPC buffer from msg[0] on, truncated to fit. */
static inline void seL4_DebugNameThread(seL4_CPtr tcb, const char *name)
{
    char *dst = (char *)&seL4_GetIPCBuffer()->msg[0];
    unsigned long room = sizeof(seL4_GetIPCBuffer()->msg) - 1;
    unsigned long i = 0;
    for (; i < room && name[i] != '\0'; i++) {
        dst[i] = name[i];
    }
    dst[i] = '\0';
    capsule_arch_syscall2(CAPSULE_SYS(seL4_SysDebugNameThread), tcb, 0);
}

/*
 * capsule's exit: DebugHalt with the status in a0/x0 and CAPSULE_EXIT_MAGIC in a1/x1
 * (sel4/capsule.h). Does not return on capsule; on a kernel that returns, it spins.
 */
static inline __attribute__((__noreturn__)) void capsule_DebugHaltWithStatus(seL4_Word status)
{
    capsule_arch_syscall2(CAPSULE_SYS(seL4_SysDebugHalt), status, CAPSULE_EXIT_MAGIC);
    for (;;) {
    }
}

#endif /* SEL4_SYSCALLS_H */
