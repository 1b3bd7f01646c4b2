/*
 * What the macro benchmark (macro.c) and its child (macro_child.c) agree on.
 */
#ifndef CAPSULE_MACRO_H
#define CAPSULE_MACRO_H

/* The child's slot for the parent's endpoint (badged MACRO_CHILD_BADGE); its fault
 * endpoint, the same endpoint badged MACRO_FAULT_BADGE, is PROCESS_SLOT_FAULT_EP. */
#define MACRO_SLOT_PARENT 12
#define MACRO_CHILD_BADGE 1
#define MACRO_FAULT_BADGE 2

/* The label of the child's last message (its Calls have label 0). */
#define MACRO_LABEL_DONE 1

/* The most pages the child can touch (its .bss array), and a page's words. */
#define MACRO_MAX_PAGES 16
#define MACRO_PAGE_WORDS (4096 / sizeof(seL4_Word))

/* Where the child faults: nothing maps it until the parent does. */
#define MACRO_FAULT_VA 0x40000000ul

#endif /* CAPSULE_MACRO_H */
