"""capsule's own libsel4: C headers for the seL4 user ABI, partly generated from kernel/abi."""
