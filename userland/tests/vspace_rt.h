/*
 * What the small VSpace fault programs share: per-architecture method names, a helper
 * that maps one fresh frame (with the page tables it needs) from the largest RAM
 * untyped into the root task's own VSpace, and the word at FAULT_VA each one faults on.
 */
#ifndef CAPSULE_TESTS_VSPACE_RT_H
#define CAPSULE_TESTS_VSPACE_RT_H

#include <sel4/sel4.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__riscv)
#define Page_Map seL4_RISCV_Page_Map
#define Page_Unmap seL4_RISCV_Page_Unmap
#define PageTable_Map seL4_RISCV_PageTable_Map
#define ATTR seL4_RISCV_Default_VMAttributes
#define OBJ_4K seL4_RISCV_4K_Page
#define OBJ_PT seL4_RISCV_PageTableObject
#else
#define Page_Map seL4_ARM_Page_Map
#define Page_Unmap seL4_ARM_Page_Unmap
#define PageTable_Map seL4_ARM_PageTable_Map
#define ATTR seL4_ARM_Default_VMAttributes
#define OBJ_4K seL4_ARM_SmallPageObject
#define OBJ_PT seL4_ARM_PageTableObject
#endif

#define FAULT_VA 0x40000000ul

/* Retype one object into the next empty root slot; 0 on failure. */
static seL4_CPtr vspace_rt_object(seL4_Word type)
{
    static seL4_CPtr next;
    seL4_BootInfo *bi = seL4_GetBootInfo();
    if (next == 0) {
        next = bi->empty.start;
    }
    seL4_CPtr ut = 0;
    unsigned best = 0;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits > best) {
            ut = s;
            best = d->sizeBits;
        }
    }
    seL4_CPtr slot = next++;
    seL4_Error e = seL4_Untyped_Retype(ut, type, 0, seL4_CapInitThreadCNode, 0, 0, slot, 1);
    return e == seL4_NoError ? slot : 0;
}

/* A fresh frame mapped read-write at `vaddr` in the root VSpace. As seL4 programs do,
 * map one more page table while Page_Map fails with FailedLookup: the number of levels
 * is the kernel's business. (Once every level is there, PageTable_Map says DeleteFirst,
 * so the loop ends even if Page_Map kept failing.) */
static seL4_CPtr vspace_rt_frame_at(seL4_Word vaddr)
{
    seL4_CPtr f = vspace_rt_object(OBJ_4K);
    while (f != 0) {
        seL4_Error e = Page_Map(f, seL4_CapInitThreadVSpace, vaddr, seL4_ReadWrite, ATTR);
        if (e == seL4_NoError) {
            return f;
        }
        if (e != seL4_FailedLookup) {
            return 0;
        }
        seL4_CPtr pt = vspace_rt_object(OBJ_PT);
        if (pt == 0 || PageTable_Map(pt, seL4_CapInitThreadVSpace, vaddr, ATTR) != seL4_NoError) {
            return 0;
        }
    }
    return 0;
}

/*
 * The word at FAULT_VA, in a fresh frame mapped read-write there (its cap in *frame).
 * If the frame cannot be mapped the program says so and exits with status 1.
 */
static volatile seL4_Word *vspace_rt_fault_word(seL4_CPtr *frame)
{
    *frame = vspace_rt_frame_at(FAULT_VA);
    if (*frame == 0) {
        printf("could not map a frame\n");
        exit(1);
    }
    return (volatile seL4_Word *)FAULT_VA;
}

#endif /* CAPSULE_TESTS_VSPACE_RT_H */
