/*
 * capsule libsel4: the umbrella header, as programs written against libsel4 include it.
 *
 * Our own implementation of the seL4 16.0.0 user ABI for riscv64 and aarch64, non-MCS
 * configuration. Numbers come from sel4/gen/ (generated from kernel/abi).
 */
#ifndef SEL4_SEL4_H
#define SEL4_SEL4_H

#if defined(CONFIG_KERNEL_MCS)
#error "capsule libsel4 implements the non-MCS configuration only"
#endif

#include <sel4/types.h>
#include <sel4/functions.h>
#include <sel4/capsule.h>
#include <sel4/syscalls.h>
#include <sel4/gen/invocation_stubs.h>

#endif /* SEL4_SEL4_H */
