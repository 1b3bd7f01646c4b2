/*
 * libsel4's per-thread IPC buffer pointer and the root task's bootinfo pointer.
 */
#include <sel4/sel4.h>

#if defined(SEL4_IPC_BUFFER_NOT_THREAD_LOCAL)
seL4_IPCBuffer *__sel4_ipc_buffer;
#else
__thread seL4_IPCBuffer *__sel4_ipc_buffer;
#endif

static seL4_BootInfo *sel4_bootinfo;

void seL4_InitBootInfo(seL4_BootInfo *bi)
{
    sel4_bootinfo = bi;
}

seL4_BootInfo *seL4_GetBootInfo(void)
{
    return sel4_bootinfo;
}
