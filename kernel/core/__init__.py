"""The operations seL4's objects share: thread state and registers (:mod:`.threads`),
message transfer (:mod:`.ipc_transfer`), notifications, endpoint IPC and reply caps
(:mod:`.ipc`), thread suspension (:mod:`.lifecycle`) and fault delivery.

Above the capability space, below the object types whose invocations use them.
"""
