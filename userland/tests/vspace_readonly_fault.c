/*
 * A remap is seen at once: the root task maps a fresh frame read-write at 0x40000000,
 * writes it, remaps the same cap at the same address read-only, reads it, and writes
 * again. The kernel must raise a VMFault (write) on that store, and the last line is
 * never printed.
 */
#include "vspace_rt.h"

int main(void)
{
    seL4_CPtr f;
    volatile seL4_Word *p = vspace_rt_fault_word(&f);
    *p = 7;
    if (Page_Map(f, seL4_CapInitThreadVSpace, FAULT_VA, seL4_CanRead, ATTR) != seL4_NoError) {
        printf("remap failed\n");
        return 1;
    }
    printf("read-only now, still reads %lu\n", (unsigned long)*p);
    *p = 8;
    printf("should not get here\n");
    return 0;
}
