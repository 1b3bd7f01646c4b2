/*
 * capsule runtime: processes built from untyped memory by the root task.
 *
 * process_create() makes, from one untyped: a CNode (2^PROCESS_CNODE_BITS slots, its
 * guard filling the rest of the word so that child CPtrs are slot numbers), a VSpace
 * with its ASID from the root task's pool, a TCB, and the child's ELF loaded page by
 * page into fresh frames (copied through a scratch mapping in the parent), a stack, an
 * IPC buffer, and a bootinfo frame the capsule runtime's start-up reads, as a root
 * task's would. The child's CNode holds caps at seL4's initial slot numbers (its TCB,
 * CNode, VSpace), so an ordinary capsule program runs unchanged as a child. The parent
 * then gives caps (process_give_cap, e.g. a badged endpoint), shares frames
 * (process_share_frame) and starts it (process_start).
 *
 * A child must not return from main(): exit() halts the whole machine. It ends by
 * suspending its own TCB (process_exit_self()).
 *
 * Programs embed a child's ELF with a line of their own source
 *
 *     CAPSULE_EMBED_ELF(child_program)
 *
 * which makes userland/build.py link `child_program` first and define
 * capsule_elf_child_program[] and capsule_elf_child_program_size.
 */
#ifndef CAPSULE_PROCESS_H
#define CAPSULE_PROCESS_H

#include <sel4/sel4.h>

#define CAPSULE_EMBED_ELF(name)                                                          \
    extern const unsigned char capsule_elf_##name[];                                    \
    extern const unsigned long capsule_elf_##name##_size;

#define PROCESS_CNODE_BITS 8
/* Child slots: seL4's initial-cap numbers for the TCB, CNode and VSpace. */
#define PROCESS_SLOT_TCB seL4_CapInitThreadTCB
#define PROCESS_SLOT_CNODE seL4_CapInitThreadCNode
#define PROCESS_SLOT_VSPACE seL4_CapInitThreadVSpace
#define PROCESS_SLOT_FAULT_EP 10 /* where process_create's fault endpoint goes */
#define PROCESS_FIRST_FREE_SLOT 16 /* the child's bootinfo->empty starts here */

/* The child's fixed addresses (outside its image). */
#define PROCESS_STACK_TOP 0x7f000000ul
#define PROCESS_STACK_PAGES 4
#define PROCESS_IPC_BUFFER 0x7f100000ul
#define PROCESS_BOOTINFO 0x7f101000ul
/* The words a parent passes to its child, in the bootinfo frame after seL4_BootInfo. */
#define PROCESS_ARGS_OFFSET 4032
#define PROCESS_NUM_ARGS 4

/* Where the parent maps a child's page while filling it. */
#define PROCESS_SCRATCH 0x7e000000ul

struct process {
    seL4_CPtr cnode, vspace, tcb; /* caps in the parent's root CNode */
    seL4_CPtr untyped;
    seL4_Word entry;
};

/*
 * Build a process from `untyped`: CNode, VSpace (ASID from the root task's pool), TCB
 * at `priority`, the ELF `elf` (`size` bytes) loaded, stack, IPC buffer, bootinfo with
 * `args` (PROCESS_NUM_ARGS words, or 0). `fault_ep` (a parent CPtr, or 0 for none) is
 * minted with `fault_badge` into the child's PROCESS_SLOT_FAULT_EP and made its fault
 * handler. The process is left Inactive. Returns seL4_NoError or the first failing
 * invocation's error (seL4_InvalidArgument for a bad ELF).
 */
seL4_Error process_create(struct process *p, seL4_CPtr untyped, const void *elf,
                          unsigned long size, const char *name, seL4_Word priority,
                          const seL4_Word *args, seL4_CPtr fault_ep, seL4_Word fault_badge);

/* Mint `src` (a parent CPtr) with `rights` and `badge` into the child's slot `slot`. */
seL4_Error process_give_cap(struct process *p, seL4_Word slot, seL4_CPtr src,
                            seL4_CapRights_t rights, seL4_Word badge);

/* Map a copy of the frame cap `frame` at `vaddr` in the child (tables as needed). */
seL4_Error process_share_frame(struct process *p, seL4_CPtr frame, seL4_Word vaddr,
                               seL4_CapRights_t rights);

/* seL4_TCB_Resume. */
seL4_Error process_start(struct process *p);

/* Child side: the parent's argument word `i`, and the end of a child's life. */
seL4_Word process_arg(unsigned i);
__attribute__((__noreturn__)) void process_exit_self(void);

/* Map page tables into `vspace` until a 4 KiB page can go at `vaddr`. */
seL4_Error process_map_page(seL4_CPtr untyped, seL4_CPtr vspace, seL4_CPtr frame,
                            seL4_Word vaddr, seL4_CapRights_t rights, int executable);

#endif
