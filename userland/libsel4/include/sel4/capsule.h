/*
 * capsule-specific additions to the seL4 user ABI (not part of seL4).
 *
 * Exit status: a thread that stops the system with seL4_DebugHalt while a1 / x1 holds
 * CAPSULE_EXIT_MAGIC gives the value of a0 / x0 as the exit status of `capsule run`.
 * A plain seL4_DebugHalt (a1 / x1 without the marker, as real libsel4 programs issue it)
 * means exit status 0. The runtime's exit() uses capsule_DebugHaltWithStatus
 * (sel4/syscalls.h); userland/runtime/README.md documents the convention.
 */
#ifndef SEL4_CAPSULE_H
#define SEL4_CAPSULE_H

/* "CAPSULE!" read as a big-endian 64-bit word. */
#define CAPSULE_EXIT_MAGIC 0x43415053554c4521ull

#endif /* SEL4_CAPSULE_H */
