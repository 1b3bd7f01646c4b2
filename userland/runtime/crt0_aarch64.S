/*
 * Root-task entry for AArch64.
 *
 * The kernel starts the root task here with the bootinfo pointer in x0 and every other
 * register zero, including sp (abi/boot.md). Set up a stack, then call
 * __capsule_start_root(bootinfo) in C with x0 untouched.
 */
#define CAPSULE_ROOT_STACK_SIZE 65536

    .section .text._sel4_start, "ax", %progbits
    .globl _sel4_start
    .type _sel4_start, %function
_sel4_start:
    adrp x9, capsule_root_stack_top
    add x9, x9, :lo12:capsule_root_stack_top
    mov sp, x9
    mov x29, #0                 /* frame pointer: end of the frame chain */
    mov x30, #0
    bl __capsule_start_root
1:  b 1b                        /* __capsule_start_root does not return */
    .size _sel4_start, . - _sel4_start

    .section .bss.capsule_root_stack, "aw", %nobits
    .balign 16
capsule_root_stack_bottom:
    .space CAPSULE_ROOT_STACK_SIZE
capsule_root_stack_top:
