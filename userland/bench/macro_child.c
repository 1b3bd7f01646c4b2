/*
 * The child of the macro benchmark (macro.c), built from untyped memory by the process
 * library each round. Its arguments (process_arg): 0 the number of Calls to make, 1 the
 * number of pages of its .bss to write and read back, 2 an address nothing maps, where
 * it writes once (a VMFault its parent handles by mapping a frame there).
 *
 * The Calls go to the parent's endpoint (slot MACRO_SLOT_PARENT) with MR0 = i; every
 * odd one also grants the child's own TCB cap; the parent answers i + 1. At the end the
 * child Sends label MACRO_LABEL_DONE with MR0 = 0 if everything it saw was right, else
 * the step that went wrong, and suspends itself.
 */
#include <process.h>

#include "macro.h"

static volatile seL4_Word pages[MACRO_MAX_PAGES][MACRO_PAGE_WORDS]
    __attribute__((aligned(4096)));

static seL4_Word touch_pages(unsigned long n)
{
    for (unsigned long p = 0; p < n; p++) {
        for (unsigned long w = 0; w < MACRO_PAGE_WORDS; w++) {
            pages[p][w] = p ^ w;
        }
    }
    for (unsigned long p = 0; p < n; p++) {
        for (unsigned long w = 0; w < MACRO_PAGE_WORDS; w++) {
            if (pages[p][w] != (p ^ w)) {
                return 1;
            }
        }
    }
    return 0;
}

static seL4_Word calls(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        seL4_Word with_cap = i & 1;
        if (with_cap) {
            seL4_SetCap(0, PROCESS_SLOT_TCB);
        }
        seL4_SetMR(0, i);
        seL4_MessageInfo_t reply =
            seL4_Call(MACRO_SLOT_PARENT, seL4_MessageInfo_new(0, 0, with_cap, 1));
        if (seL4_MessageInfo_get_length(reply) != 1 || seL4_GetMR(0) != i + 1) {
            return 2;
        }
    }
    return 0;
}

static seL4_Word fault_once(seL4_Word address)
{
    volatile seL4_Word *word = (volatile seL4_Word *)address;
    *word = 0x5ca1ab1e; /* faults; runs again once the parent has mapped a frame here */
    return *word == 0x5ca1ab1e ? 0 : 3;
}

int main(void)
{
    if (process_arg(1) > MACRO_MAX_PAGES) {
        seL4_SetMR(0, 4);
    } else {
        seL4_Word status = touch_pages(process_arg(1));
        if (status == 0) {
            status = calls(process_arg(0));
        }
        if (status == 0) {
            status = fault_once(process_arg(2));
        }
        seL4_SetMR(0, status);
    }
    seL4_Send(MACRO_SLOT_PARENT, seL4_MessageInfo_new(MACRO_LABEL_DONE, 0, 0, 1));
    process_exit_self();
}
