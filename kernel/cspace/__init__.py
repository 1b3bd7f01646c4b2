"""Capability addressing and derivation: lookups (:mod:`.lookup`), the derivation tree
(:mod:`.cdt`), what a cap becomes when copied (:mod:`.derive`), and what a kernel entry
reads of its caller besides registers: the IPC buffer (:mod:`.ipc_buffer`) and the
message arguments and extra caps of an invocation (:mod:`.arguments`).
"""
