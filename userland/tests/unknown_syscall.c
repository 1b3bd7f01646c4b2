/*
 * Issues syscall number -99, which no configuration defines. The kernel raises an
 * UnknownSyscall fault; what happens next is the kernel's (the root task has no fault
 * handler). If execution does continue, the program says so.
 */
#include <stdio.h>

#define BOGUS_SYSCALL (-99L)

int main(void)
{
#if defined(__riscv)
    register long a7 __asm__("a7") = BOGUS_SYSCALL;
    __asm__ volatile("ecall" : : "r"(a7) : "memory", "a0", "a1", "a2", "a3", "a4", "a5", "a6");
#elif defined(__aarch64__)
    register long x7 __asm__("x7") = BOGUS_SYSCALL;
    __asm__ volatile("svc #0" : : "r"(x7) : "memory", "x0", "x1", "x2", "x3", "x4", "x5", "x6");
#else
#error "unsupported architecture"
#endif
    printf("after unknown syscall\n");
    return 0;
}
