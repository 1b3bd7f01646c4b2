"""Unicorn's check after every guest load and store, and turning it off where nothing
needs it.

Unicorn 2.1.4 follows every memory access of translated code with a call into C
(``helper_check_exit_request``) so that a stop requested during the access takes effect
before the next instruction. A helper call makes the generated code save its guest
registers first; on seL4's sel4test these calls cost about a fifth of the run on
AArch64 (measured: 27 s against 35 s) and a fourteenth on RISC-V. QEMU has no such
calls.

What needs the check, and the machine keeps it on for (``UnicornMachine``):

- Unicorn's own instruction counter (``count=``) and every code hook (breakpoints, the
  emulated FP trap) stop the run from a per-instruction callback; without the check the
  rest of the block would run first.
- An access to a physical address with nothing behind it (a device frame where the
  platform has no device) is reported through the same stop; without the check the
  block would run on past the faulting instruction.

Nothing else a run does needs it: a page fault or a syscall is an exception, taken at
once; a stop from the block hook or from another thread is honoured at the start of the
next block, where Unicorn checks whatever this flag says; a store to translated code
leaves the block by QEMU's own route.

Unicorn offers no call for this. Its own switch (``uc_struct.no_exit_request``, which
its ARM translator sets inside Thumb IT blocks) is a byte of the engine's structure,
found here by the fields around it (the page sizes and ``init_done``) and then
*checked by its effect*: a probe block whose load hook asks for a stop must run to its
end with the switch set and stop after the load with it clear. If the byte cannot be
found, or the probe disagrees, the check stays on and :attr:`ExitChecks.available` is
False: correct, slower. The switch is read when code is translated, so a change takes
effect on code translated afterwards (the caller drops all translations).
"""

from __future__ import annotations

import ctypes
import mmap
import struct
from typing import Final

from unicorn import Uc, UcError
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TB_FLUSH, UC_HOOK_INTR, UC_HOOK_MEM_READ

__all__ = ["ExitChecks"]

_NEVER: Final = 0xFFFF_FFFF_FFFF_FFFF
_SEARCHED: Final = 4096
"""Bytes of ``uc_struct`` searched; in 2.1.4 the field lies at about 2 KiB."""
_SIGNATURE: Final = struct.Struct("<IIQQ")
"""target_page_size, target_page_align, qemu_host_page_size, qemu_real_host_page_size."""
_TO_FLAGS: Final = 48
"""From the signature to the four flags hook_insert, first_tb, no_exit_request,
init_done (after qemu_icache_linesize, context_content, cpu_context_size, next_pc)."""


class ExitChecks:
    """The per-access exit check of one engine: on (Unicorn's default) or off."""

    __slots__ = ("_flag", "available")

    def __init__(self, uc: Uc) -> None:
        self._flag: ctypes.c_uint8 | None = _locate(uc)
        self.available = False
        """Whether :meth:`set_on` can turn the check off (found and probed)."""

    def calibrate(self, uc: Uc, at: int, probe: bytes, register: int,
                  address_register: int) -> None:
        """Decide :attr:`available` by the probe described in the module docstring.

        ``probe`` (run at RAM address ``at``, MMU off, before the guest exists) adds 1
        to ``register`` before and after a load from the address in
        ``address_register`` and ends in a syscall, all in one block. Leaves the engine
        with the check on, no translation of the probe, and the bytes it used zero."""
        flag = self._flag
        if flag is None:
            return
        data = at + len(probe) + 8 & ~7
        stops = uc.hook_add(UC_HOOK_INTR, lambda uc, intno, user: uc.emu_stop())
        loads = uc.hook_add(UC_HOOK_MEM_READ, lambda uc, access, address, size, value, user:
                            uc.emu_stop(), begin=data, end=data + 7)

        def run(value: int) -> int:
            flag.value = value
            uc.ctl(UC_CTL_TB_FLUSH, UC_CTL_IO_WRITE)
            uc.reg_write(register, 0)
            uc.reg_write(address_register, data)
            uc.emu_start(at, _NEVER, 0, 0)
            return int(uc.reg_read(register))

        results = []
        try:
            uc.mem_write(at, probe)
            results = [run(0), run(1)]
        except UcError:
            results = []
        finally:
            flag.value = 0
            uc.hook_del(loads)
            # Unicorn takes a deleted hook out of its lists only when an emu_start ends,
            # and while a load hook is listed every load translated calls into it: the
            # guest's code would keep that slow path. One more run (the probe, which now
            # reaches its syscall) ends with the hook gone.
            try:
                run(0)
            except UcError:
                pass
            uc.hook_del(stops)
            uc.mem_write(at, bytes(data + 8 - at))
            uc.reg_write(register, 0)
            uc.reg_write(address_register, 0)
            uc.ctl(UC_CTL_TB_FLUSH, UC_CTL_IO_WRITE)
        self.available = results == [1, 2]

    @property
    def on(self) -> bool:
        return self._flag is None or not self._flag.value

    def set_on(self, on: bool) -> bool:
        """Turn the check on or off (off only where :attr:`available`); whether that
        changed anything, in which case the caller drops every translation."""
        flag = self._flag
        if flag is None or not self.available or on is self.on:
            return False
        flag.value = 0 if on else 1
        return True


def _locate(uc: Uc) -> ctypes.c_uint8 | None:
    """``no_exit_request`` of ``uc``'s engine, or None unless exactly one place in the
    searched bytes looks like its neighbourhood (module docstring)."""
    base = ctypes.cast(uc._uch, ctypes.c_void_p).value
    if not base:
        return None
    page = uc.ctl_get_page_size()
    memory = ctypes.string_at(base, _SEARCHED)
    wanted = (page, page - 1, mmap.PAGESIZE, mmap.PAGESIZE)
    found = [
        offset + _TO_FLAGS + 2
        for offset in range(0, _SEARCHED - _TO_FLAGS - 4, 4)
        if _SIGNATURE.unpack_from(memory, offset) == wanted
        and memory[offset + _TO_FLAGS] in (0, 1)  # hook_insert
        and memory[offset + _TO_FLAGS + 1] in (0, 1)  # first_tb
        and memory[offset + _TO_FLAGS + 2] == 0  # no_exit_request: off until set here
        and memory[offset + _TO_FLAGS + 3] == 1  # init_done
    ]
    if len(found) != 1:
        return None
    return ctypes.c_uint8.from_address(base + found[0])
