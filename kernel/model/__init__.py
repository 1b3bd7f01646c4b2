"""Kernel state as plain data: caps, slots, the kernel objects, the ready queues, faults and
errors, the page-table formats, and :class:`~kernel.model.state.KernelState` holding them.

The lowest layer above the ABI declaration: it imports nothing of the kernel but
``kernel.abi``, ``kernel.config`` and ``kernel.machine``.
"""
