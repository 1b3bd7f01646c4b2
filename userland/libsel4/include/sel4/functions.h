/*
 * capsule libsel4: IPC buffer access and bootinfo.
 *
 * The current thread's IPC buffer pointer lives in the thread-local variable
 * __sel4_ipc_buffer (libsel4's default since 15.0.0). The runtime sets it from
 * bootinfo->ipcBuffer before main runs; other threads must call seL4_SetIPCBuffer.
 * Define SEL4_IPC_BUFFER_NOT_THREAD_LOCAL (everywhere, consistently) for a plain global.
 */
#ifndef SEL4_FUNCTIONS_H
#define SEL4_FUNCTIONS_H

#include <sel4/types.h>

#if defined(SEL4_IPC_BUFFER_NOT_THREAD_LOCAL)
extern seL4_IPCBuffer *__sel4_ipc_buffer;
#else
extern __thread seL4_IPCBuffer *__sel4_ipc_buffer;
#endif

static inline void seL4_SetIPCBuffer(seL4_IPCBuffer *ipc_buffer)
{
    __sel4_ipc_buffer = ipc_buffer;
}

static inline seL4_IPCBuffer *seL4_GetIPCBuffer(void)
{
    return __sel4_ipc_buffer;
}

static inline seL4_Word seL4_GetMR(int i)
{
    return seL4_GetIPCBuffer()->msg[i];
}

static inline void seL4_SetMR(int i, seL4_Word mr)
{
    seL4_GetIPCBuffer()->msg[i] = mr;
}

static inline seL4_Word seL4_GetUserData(void)
{
    return seL4_GetIPCBuffer()->userData;
}

static inline void seL4_SetUserData(seL4_Word data)
{
    seL4_GetIPCBuffer()->userData = data;
}

static inline seL4_Word seL4_GetBadge(int i)
{
    return seL4_GetIPCBuffer()->caps_or_badges[i];
}

static inline seL4_CPtr seL4_GetCap(int i)
{
    return (seL4_CPtr)seL4_GetIPCBuffer()->caps_or_badges[i];
}

static inline void seL4_SetCap(int i, seL4_CPtr cptr)
{
    seL4_GetIPCBuffer()->caps_or_badges[i] = (seL4_Word)cptr;
}

static inline void seL4_GetCapReceivePath(seL4_CPtr *receiveCNode, seL4_CPtr *receiveIndex,
                                          seL4_Word *receiveDepth)
{
    seL4_IPCBuffer *ipc = seL4_GetIPCBuffer();
    if (receiveCNode) {
        *receiveCNode = ipc->receiveCNode;
    }
    if (receiveIndex) {
        *receiveIndex = ipc->receiveIndex;
    }
    if (receiveDepth) {
        *receiveDepth = ipc->receiveDepth;
    }
}

static inline void seL4_SetCapReceivePath(seL4_CPtr receiveCNode, seL4_CPtr receiveIndex,
                                          seL4_Word receiveDepth)
{
    seL4_IPCBuffer *ipc = seL4_GetIPCBuffer();
    ipc->receiveCNode = receiveCNode;
    ipc->receiveIndex = receiveIndex;
    ipc->receiveDepth = receiveDepth;
}

/* The root task's bootinfo, recorded by the runtime before main (libsel4/src/bootinfo.c). */
void seL4_InitBootInfo(seL4_BootInfo *bi);
seL4_BootInfo *seL4_GetBootInfo(void);

#endif /* SEL4_FUNCTIONS_H */
