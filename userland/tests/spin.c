/*
 * Prints a line, then "forever" without a newline, then computes forever without a
 * system call: only an interrupt (Ctrl-C) or an instruction limit ends it. Under a large
 * tick_instructions nothing returns to the kernel for minutes, which is what the Ctrl-C
 * tests need (tests/cli/test_cli_interrupt.py); the first line tells them it has booted.
 */
#include <stdio.h>

volatile unsigned long spin_count;

int main(void)
{
    printf("spinning\n");
    printf("forever");
    for (;;) {
        spin_count++;
    }
}
