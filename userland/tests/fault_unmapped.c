/*
 * Reads from an unmapped address. 0x10000000 lies outside the image and the IPC
 * buffer / bootinfo pages after it on both architectures, so the kernel must raise a
 * VMFault for the root task and the line below is never printed.
 */
#include <stdio.h>

#define UNMAPPED_ADDRESS 0x10000000ul

int main(void)
{
    volatile unsigned long *p = (volatile unsigned long *)UNMAPPED_ADDRESS;
    (void)*p;
    printf("should not get here\n");
    return 0;
}
