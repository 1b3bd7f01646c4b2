"""Keeping Unicorn's translated code in step with what the kernel writes into guest RAM.

Unicorn 2.1.4's ``uc_mem_write`` copies the bytes but does not drop the code translated
from them (tests/emulator/test_translation.py shows it). Two things follow when the kernel writes over memory
that once held code the guest ran (a frame retyped again, a component's frames restored,
the debugger patching an instruction):

- the guest can run the *old* instructions from the stale translation;
- the stale translation keeps the page marked as holding code, so every later guest
  store to that page takes QEMU's slow self-modifying-code path (``notdirty_write``). On
  seL4's own test suite one such page, reused as a test's stack, took a tenth of the
  run's time.

Guest stores are tracked by Unicorn itself; only the kernel's writes need this. Unicorn's
C library exports the QEMU routine that drops translations by RAM offset
(``tb_invalidate_phys_range_<arch>``) but the binding does not wrap it, so we call it
through ctypes. Whether it works is checked once per engine by a probe that runs code,
overwrites it through ``uc_mem_write`` and runs it again; if the routine is missing or
the probe still sees the old code, every kernel write to RAM drops *all* translations
instead (correct, slower), and :attr:`TranslationKeeper.precise` says so.

A second cost of Unicorn's code tracking needs no help from us and is skipped
(:meth:`TranslationKeeper.skip_rescans`). Each translation of a block ends with a walk
over every entry of the soft TLB in every MMU mode (``tlb_reset_dirty_by_vaddr``: 12
modes on AArch64), marking entries for the block's virtual page as holding code again,
in case a store had cleared that mark since the entry was made. Unicorn clears the mark
only for an entry that is not executable, and one TLB entry serves both stores and
fetches of a page in a mode; the guest runs in one mode (user), and the TLB is flushed
whenever the address space changes. So when a block is translated from a page, that
page's entry is executable and still marked, and the walk finds nothing to do. It cost
2-4% of sel4test and the macro benchmark on AArch64.

Unicorn skips that walk for a block whose address has a memory hook, and it checks
with the block's *virtual* address; where a store clears the mark it checks the
store's *physical* address instead. A hook that never acts (an unmapped-fetch hook
that handles nothing) over every address outside RAM therefore skips the walk for code
at virtual addresses outside RAM's physical range, where user code normally lies, and
changes nothing for stores, which all reach RAM. Code at a virtual address that is also
a RAM address keeps the walk.
"""

from __future__ import annotations

import ctypes
from typing import Any, Final

from unicorn import Uc, UcError
from unicorn.unicorn_const import (
    UC_CTL_IO_WRITE,
    UC_CTL_TB_FLUSH,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_UNMAPPED,
)
from unicorn.unicorn_py3.unicorn import uclib

__all__ = ["TranslationKeeper"]

_NEVER: Final = 0xFFFF_FFFF_FFFF_FFFF


class TranslationKeeper:
    """Drops the translations of guest RAM the kernel has just written.

    ``ram_base``/``ram_size``: the RAM block, which must be the engine's first memory
    mapping (so its bytes start at RAM offset 0, where QEMU's routine counts from).
    """

    __slots__ = ("_uc", "_uch", "_ram_base", "_ram_end", "_invalidate", "precise", "_rescan_hooks")

    def __init__(self, uc: Uc, arch_name: str, ram_base: int, ram_size: int) -> None:
        self._uc = uc
        self._uch = uc._uch
        self._ram_base = ram_base
        self._ram_end = ram_base + ram_size
        self._invalidate: Any = _routine(arch_name)
        self.precise = False
        """Whether only the written range is dropped (False: everything is)."""
        self._rescan_hooks: list[int] = []

    def calibrate(self, probe_code: bytes, patched_code: bytes, register: int,
                  expected: tuple[int, int]) -> None:
        """Decide :attr:`precise` by the probe described in the module docstring.

        ``probe_code`` leaves ``expected[0]`` in ``register`` starting from zero and ends
        in a syscall; ``patched_code`` (same length) leaves ``expected[1]``. The probe
        runs at the start of RAM with the MMU off, before the guest exists, and leaves
        those bytes zero with no translation of them.
        """
        if self._invalidate is None:
            return
        uc, at = self._uc, self._ram_base
        hook = uc.hook_add(UC_HOOK_INTR, lambda uc, intno, data: uc.emu_stop())
        try:
            results = []
            for code in (probe_code, patched_code):
                uc.mem_write(at, code)
                self._invalidate(self._uch, 0, len(code))
                uc.reg_write(register, 0)
                uc.emu_start(at, _NEVER, 0, 64)
                results.append(uc.reg_read(register))
            self.precise = tuple(results) == expected
        except UcError:
            self.precise = False
        finally:
            uc.hook_del(hook)
            uc.reg_write(register, 0)
            uc.mem_write(at, bytes(len(probe_code)))
            self.forget(at, len(probe_code))

    def skip_rescans(self) -> list[tuple[int, int]]:
        """Make Unicorn skip its TLB walk after translating code at a virtual address
        outside RAM (module docstring); returns the address ranges covered, inclusive.

        The hooks handle nothing: a fetch from an unmapped physical address fails as it
        did without them. Call once; later calls change nothing."""
        ranges = []
        if self._ram_base > 0:
            ranges.append((0, self._ram_base - 1))
        if self._ram_end <= _NEVER:
            ranges.append((self._ram_end, _NEVER))
        if not self._rescan_hooks:
            self._rescan_hooks = [
                self._uc.hook_add(UC_HOOK_MEM_FETCH_UNMAPPED, _not_handled, begin=begin, end=end)
                for begin, end in ranges]
        return ranges

    def forget(self, paddr: int, size: int) -> None:
        """Drop every translation of code in ``[paddr, paddr + size)``; call after the
        kernel writes there. Addresses outside RAM have nothing to drop."""
        if size <= 0 or paddr >= self._ram_end or paddr + size <= self._ram_base:
            return
        if self.precise:
            start = max(paddr, self._ram_base) - self._ram_base
            end = min(paddr + size, self._ram_end) - self._ram_base
            self._invalidate(self._uch, start, end)
        else:
            self._uc.ctl(UC_CTL_TB_FLUSH, UC_CTL_IO_WRITE)


def _not_handled(_uc: Uc, _access: int, _address: int, _size: int, _value: int,
                 _data: object) -> bool:
    """An unmapped-memory hook that leaves the access to fail as without it."""
    return False


def _routine(arch_name: str) -> Any:
    """QEMU's ``tb_invalidate_phys_range(uc, start, end)`` for ``arch_name``, or None."""
    try:
        routine = getattr(uclib, f"tb_invalidate_phys_range_{arch_name}")
    except AttributeError:
        return None
    routine.argtypes = (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
    routine.restype = None
    return routine
