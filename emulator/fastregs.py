"""Batch register access through Unicorn's C API with preallocated ctypes buffers.

The binding's ``reg_read_batch`` rebuilds ctypes lists on every call and is slower than
reading registers one by one (UNICORN.md: 95k vs 492k traps/s with the raw call). A
:class:`RegBatch` is built once per register list and reused on every trap.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from unicorn import Uc
from unicorn.unicorn_py3.unicorn import uclib

__all__ = ["RegBatch"]


class RegBatch:
    """Read or write a fixed list of 64-bit registers in one C call.

    Contract: every register id must name a 64-bit integer register of ``uc``'s
    architecture; ``write`` takes exactly as many values as there are registers, or
    fewer (then only the first ``len(values)`` registers are written).
    """

    __slots__ = ("_uch", "_count", "_reg_ids", "_ids", "_vals", "_ptrs", "_some_ids")

    def __init__(self, uc: Uc, reg_ids: Sequence[int]) -> None:
        self._uch = uc._uch
        self._count = len(reg_ids)
        self._reg_ids = tuple(reg_ids)
        self._ids = (ctypes.c_int * self._count)(*reg_ids)
        self._some_ids = (ctypes.c_int * self._count)()
        """Scratch id list of :meth:`write_positions`."""
        self._vals = (ctypes.c_uint64 * self._count)()
        self._ptrs = (ctypes.c_void_p * self._count)(
            *(ctypes.addressof(self._vals) + 8 * i for i in range(self._count))
        )

    def read(self) -> list[int]:
        status = uclib.uc_reg_read_batch(self._uch, self._ids, self._ptrs, self._count)
        if status:
            raise RuntimeError(f"uc_reg_read_batch failed with status {status}")
        return self._vals[:]

    def write(self, values: Sequence[int]) -> None:
        n = len(values)
        if n > self._count:
            raise ValueError("more values than registers in the batch")
        self._vals[:n] = values  # type: ignore[call-overload]  # any sequence works at run time
        status = uclib.uc_reg_write_batch(self._uch, self._ids, self._ptrs, n)
        if status:
            raise RuntimeError(f"uc_reg_write_batch failed with status {status}")

    def write_positions(self, values: dict[int, int]) -> None:
        """Write some registers, named by their position in this batch's list:
        ``{position: value}`` (for the few words the kernel changed in a saved thread)."""
        ids, vals, reg_ids = self._some_ids, self._vals, self._reg_ids
        n = 0
        for position, value in values.items():
            ids[n] = reg_ids[position]
            vals[n] = value
            n += 1
        status = uclib.uc_reg_write_batch(self._uch, ids, self._ptrs, n)
        if status:
            raise RuntimeError(f"uc_reg_write_batch failed with status {status}")

    def read_saved(self, context: object) -> list[int]:
        """This batch's registers as stored in a saved Unicorn context (``uc_context*``)."""
        status = uclib.uc_context_reg_read_batch(context, self._ids, self._ptrs, self._count)
        if status:
            raise RuntimeError(f"uc_context_reg_read_batch failed with status {status}")
        return self._vals[:]
