"""Reaching a thread's IPC buffer the way seL4 does: through the frame cap in its TCB.

seL4 does not walk page tables to find the IPC buffer: it uses the frame cap stored in
the TCB's IPC-buffer slot and the buffer's offset within that frame. A thread whose slot
holds no frame cap has no IPC buffer; messages then carry register MRs only.
"""

from __future__ import annotations

import struct
from typing import Final

from kernel.abi.constants import IPC_BUFFER_SIZE_BITS, WORD_BYTES
from kernel.model.caps import FrameCap
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = ["WORDS", "ipc_buffer_paddr", "read_ipc_buffer", "read_ipc_words", "write_ipc_words"]

_IPC_BUFFER_SIZE: Final = 1 << IPC_BUFFER_SIZE_BITS
WORDS: Final = [struct.Struct(f"<{count}Q") for count in range(_IPC_BUFFER_SIZE // WORD_BYTES + 1)]
"""The layout of ``count`` words, for every count a buffer holds: compiled once, not
formatted and looked up at every message."""


def ipc_buffer_paddr(kernel: KernelState, tcb: TCB, for_write: bool) -> int | None:
    """Physical address of ``tcb``'s IPC buffer, or None if it has none usable.

    A receiver (``for_write``) needs a frame with read-write rights, a sender read.
    """
    cap = tcb.ipc_buffer_slot.cap
    if not isinstance(cap, FrameCap) or not tcb.ipc_buffer or cap.is_device:
        return None
    if not cap.rights.read or (for_write and not cap.rights.write):
        return None
    offset = tcb.ipc_buffer & ((1 << cap.size_bits) - 1)
    if offset + _IPC_BUFFER_SIZE > (1 << cap.size_bits):
        return None
    return cap.paddr + offset


def read_ipc_buffer(kernel: KernelState, tcb: TCB, offset: int, size: int) -> bytes | None:
    """``size`` bytes at ``offset`` in ``tcb``'s IPC buffer, or None without a buffer."""
    base = ipc_buffer_paddr(kernel, tcb, for_write=False)
    if base is None or offset + size > _IPC_BUFFER_SIZE:
        return None
    return kernel.machine.read_phys(base + offset, size)


def read_ipc_words(kernel: KernelState, tcb: TCB, first: int, count: int) -> list[int] | None:
    """Words ``first .. first+count-1`` of the IPC buffer (word 1 is msg[0])."""
    raw = read_ipc_buffer(kernel, tcb, WORD_BYTES * first, WORD_BYTES * count)
    return None if raw is None else list(WORDS[count].unpack(raw))


def write_ipc_words(kernel: KernelState, tcb: TCB, first: int, words: list[int]) -> bool:
    """Store ``words`` from word ``first`` of the IPC buffer; False without a buffer."""
    base = ipc_buffer_paddr(kernel, tcb, for_write=True)
    if base is None or WORD_BYTES * (first + len(words)) > _IPC_BUFFER_SIZE:
        return False
    kernel.machine.write_phys(base + WORD_BYTES * first, WORDS[len(words)].pack(*words))
    return True
