"""Exact instruction counts from Unicorn's own counter, found and verified at start-up.

``uc_emu_start(..., count=N)`` makes Unicorn count every instruction it starts, in C, in
a field of its engine structure (``emu_counter``, right before ``emu_count``, the limit we
pass). The Python binding does not expose it. Counting in a Python code hook would cost
an interpreter call per instruction, so instead we locate the field once per engine:
start a tiny program with an unusual limit, find that limit's bytes in the engine
structure, and take the word before it as the counter. The location is accepted only if
it holds exactly the number of instructions the probe ran; otherwise counting is
reported as unavailable (``None``), never guessed.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Final

from unicorn import Uc

__all__ = ["InstructionCounter"]

_PROBE_LIMIT: Final = 0x3A5E_D1C3_0B5E_7701  # an improbable value to search for
_SCAN_BYTES: Final = 4096


class InstructionCounter:
    """Reads how many instructions the last ``emu_start`` started.

    Use :meth:`calibrate` once, right after the probe run described in the module
    docstring; then :meth:`read` after each ``emu_start``.
    """

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        self._counter: ctypes.c_uint64 | None = None

    @property
    def available(self) -> bool:
        return self._counter is not None

    @staticmethod
    def probe_limit() -> int:
        """The ``count`` argument the calibration run must be started with."""
        return _PROBE_LIMIT

    def calibrate(self, uc: Uc, expected: int) -> bool:
        """Locate the counter after a probe run that started ``expected`` instructions."""
        base = uc._uch.value if uc._uch is not None else None
        if not base:
            return False
        raw = ctypes.string_at(base, _SCAN_BYTES)
        offset = raw.find(struct.pack("<Q", _PROBE_LIMIT))
        if offset < 8 or offset % 8:
            return False
        (value,) = struct.unpack_from("<Q", raw, offset - 8)
        if value != expected:
            return False
        self._counter = ctypes.c_uint64.from_address(base + offset - 8)
        return True

    def current(self) -> int:
        """Instructions the ``emu_start`` in progress has started so far (0 when
        counting is unavailable): read from inside one of its hooks."""
        return 0 if self._counter is None else self._counter.value

    def read(self, limit: int) -> int | None:
        """Instructions executed by the last ``emu_start(count=limit)``, or None.

        When the limit is reached Unicorn has already counted the first instruction it
        did not run, hence the clamp.
        """
        if self._counter is None:
            return None
        return min(self._counter.value, limit)
