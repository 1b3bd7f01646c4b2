/*
 * Benchmarks: IPC ping-pong between the root task and one thread, each round trip a
 * seL4_Call and a seL4_ReplyRecv, so every kernel entry switches threads. With
 * OTHER_SPACE the thread runs in an address space of its own: a second VSpace holding
 * copies of the root task's image frame caps at the same addresses (the same physical
 * pages, so its stack and IPC buffer are the runtime's static storage), and every
 * switch changes address space. The loop runs until the harness's instruction limit.
 */
#ifndef CAPSULE_BENCH_PINGPONG_H
#define CAPSULE_BENCH_PINGPONG_H

#include <sel4/sel4.h>
#include <stdio.h>
#include <stdlib.h>
#include <thread.h>

#if defined(__riscv)
#define OBJ_PAGE_TABLE seL4_RISCV_PageTableObject
#define OBJ_VSPACE seL4_RISCV_PageTableObject
#define PAGE_MAP seL4_RISCV_Page_Map
#define PAGE_TABLE_MAP seL4_RISCV_PageTable_Map
#define ASSIGN seL4_RISCV_ASIDPool_Assign
#define ATTR seL4_RISCV_Default_VMAttributes
#else
#define OBJ_PAGE_TABLE seL4_ARM_PageTableObject
#define OBJ_VSPACE seL4_ARM_VSpaceObject
#define PAGE_MAP seL4_ARM_Page_Map
#define PAGE_TABLE_MAP seL4_ARM_PageTable_Map
#define ASSIGN seL4_ARM_ASIDPool_Assign
#define ATTR seL4_ARM_Default_VMAttributes
#endif

extern char _image_start[];

static seL4_CPtr endpoint;
static struct thread_storage server_storage;
static struct thread server;

static void serve(void *arg)
{
    (void)arg;
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(endpoint, &badge);
    for (;;) {
        info = seL4_ReplyRecv(endpoint, info, &badge);
    }
}

static seL4_CPtr biggest_untyped(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_CPtr best = 0;
    unsigned bits = 0;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits > bits) {
            best = s;
            bits = d->sizeBits;
        }
    }
    return best;
}

static seL4_CPtr retype(seL4_CPtr ut, seL4_Word type)
{
    seL4_CPtr slot = slot_alloc();
    if (seL4_Untyped_Retype(ut, type, 0, seL4_CapInitThreadCNode, 0, 0, slot, 1) != 0) {
        printf("retype of type %lu failed\n", (unsigned long)type);
        exit(1);
    }
    return slot;
}

/* A VSpace mapping the root task's whole image at its own addresses. */
static seL4_CPtr image_copy_vspace(seL4_CPtr ut)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_CPtr vs = retype(ut, OBJ_VSPACE);
    if (ASSIGN(seL4_CapInitThreadASIDPool, vs) != seL4_NoError) {
        printf("assign failed\n");
        exit(1);
    }
    seL4_Word base = (seL4_Word)_image_start & ~4095ul;
    for (seL4_CPtr f = bi->userImageFrames.start; f < bi->userImageFrames.end; f++) {
        seL4_Word va = base + (f - bi->userImageFrames.start) * 4096;
        seL4_CPtr copy = slot_alloc();
        seL4_CNode_Copy(seL4_CapInitThreadCNode, copy, seL4_WordBits,
                        seL4_CapInitThreadCNode, f, seL4_WordBits, seL4_AllRights);
        while (PAGE_MAP(copy, vs, va, seL4_ReadWrite, ATTR) == seL4_FailedLookup) {
            PAGE_TABLE_MAP(retype(ut, OBJ_PAGE_TABLE), vs, va, ATTR);
        }
    }
    return vs;
}

static int pingpong(int other_space)
{
    seL4_CPtr ut = biggest_untyped();
    endpoint = retype(ut, seL4_EndpointObject);
    if (thread_create(&server, &server_storage, ut, "server", serve, 0, 255) != 0) {
        printf("thread_create failed\n");
        return 1;
    }
    if (other_space) {
        seL4_CPtr vs = image_copy_vspace(ut);
        if (seL4_TCB_SetSpace(server.tcb, 0, seL4_CapInitThreadCNode, 0, vs, 0) != 0) {
            printf("SetSpace failed\n");
            return 1;
        }
    }
    thread_start(&server);
    printf("pingpong %s\n", other_space ? "other space" : "same space");
    for (;;) {
        seL4_Call(endpoint, seL4_MessageInfo_new(0, 0, 0, 0));
    }
}

#endif /* CAPSULE_BENCH_PINGPONG_H */
