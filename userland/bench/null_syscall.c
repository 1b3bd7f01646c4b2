/*
 * Benchmark: the null system call. seL4_Yield with nothing else to run, N times, then
 * the count on the console so that the harness can check the loop really ran.
 * N comes from the image's build (see bench/run.py) through the macro BENCH_N.
 */
#include <sel4/sel4.h>
#include <stdio.h>

#ifndef BENCH_N
#define BENCH_N 200000
#endif

int main(void)
{
    unsigned long i;
    for (i = 0; i < BENCH_N; i++) {
        seL4_Yield();
    }
    printf("null_syscall %lu\n", i);
    return 0;
}
