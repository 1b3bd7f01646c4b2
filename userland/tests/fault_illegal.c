/*
 * Executes an illegal instruction. The kernel must raise a UserException fault for the
 * root task (which has no fault handler), so the line below is never printed.
 */
#include <stdio.h>

int main(void)
{
#if defined(__riscv)
    __asm__ volatile(".word 0" ::: "memory"); /* all-zero: defined illegal */
#elif defined(__aarch64__)
    __asm__ volatile("udf #0" ::: "memory");
#else
#error "unsupported architecture"
#endif
    printf("should not get here\n");
    return 0;
}
