/*
 * capsule libsel4: the umbrella header, as programs written against libsel4 include it.
 *
 * Our own implementation of the seL4 16.0.0 user ABI for riscv64 and aarch64, in the
 * non-MCS configuration or, with CONFIG_KERNEL_MCS defined (capsule cc --mcs), the MCS
 * one. Numbers come from sel4/gen/ (generated from kernel/abi).
 */
#ifndef SEL4_SEL4_H
#define SEL4_SEL4_H

#include <sel4/types.h>
#include <sel4/functions.h>
#include <sel4/capsule.h>
#include <sel4/syscalls.h>
#include <sel4/gen/invocation_stubs.h>

#if defined(CONFIG_KERNEL_MCS)
/* SchedControl_ConfigureFlags without flags, as libsel4 offers it. */
static inline seL4_Error seL4_SchedControl_Configure(seL4_SchedControl _service,
                                                     seL4_SchedContext schedcontext,
                                                     seL4_Time budget, seL4_Time period,
                                                     seL4_Word extra_refills, seL4_Word badge)
{
    return seL4_SchedControl_ConfigureFlags(_service, schedcontext, budget, period,
                                            extra_refills, badge, seL4_SchedContext_NoFlag);
}

/* The refills beyond the minimum two that a scheduling context of 2^size bytes holds. */
static inline seL4_Word seL4_MaxExtraRefills(seL4_Word size)
{
    return ((1ul << size) - seL4_CoreSchedContextBytes) / seL4_RefillSizeBytes;
}
#endif

#endif /* SEL4_SEL4_H */
