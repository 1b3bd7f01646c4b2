/*
 * Root-task entry for RISC-V 64.
 *
 * The kernel starts the root task here with the bootinfo pointer in a0 and every other
 * register zero, including sp (abi/boot.md). Set up gp and a stack, then call
 * __capsule_start_root(bootinfo) in C with a0 untouched.
 */
#define CAPSULE_ROOT_STACK_SIZE 65536

    .section .text._sel4_start, "ax", @progbits
    .globl _sel4_start
    .type _sel4_start, @function
_sel4_start:
    /* gp must be loaded before any code that may have been relaxed against it. */
    .option push
    .option norelax
    lla gp, __global_pointer$
    .option pop
    lla sp, capsule_root_stack_top
    li s0, 0                    /* frame pointer: end of the frame chain */
    li ra, 0
    call __capsule_start_root
1:  j 1b                        /* __capsule_start_root does not return */
    .size _sel4_start, . - _sel4_start

    .section .bss.capsule_root_stack, "aw", @nobits
    .balign 16
capsule_root_stack_bottom:
    .space CAPSULE_ROOT_STACK_SIZE
capsule_root_stack_top:
