"""Kernel entry: the system-call table, the invocation path (lookup, decode, perform, reply),
the decoder table and the IPC fastpath. :class:`kernel.kernel.Kernel` sits on top.
"""
