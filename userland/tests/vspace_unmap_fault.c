/*
 * Access after unmap faults: the root task maps a fresh frame at 0x40000000, writes and
 * reads it, unmaps it and reads again. The kernel must raise a VMFault on that read (the
 * root task has no fault handler, so the run stops on it) and the last line is never
 * printed. The unmap must reach the emulator's cached translations at once: the address
 * was used a moment before.
 */
#include "vspace_rt.h"

int main(void)
{
    seL4_CPtr f;
    volatile seL4_Word *p = vspace_rt_fault_word(&f);
    *p = 42;
    printf("mapped: %lu\n", (unsigned long)*p);
    if (Page_Unmap(f) != seL4_NoError) {
        printf("unmap failed\n");
        return 1;
    }
    printf("unmapped\n");
    (void)*p;
    printf("should not get here\n");
    return 0;
}
