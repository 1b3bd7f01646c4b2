"""A fake machine for kernel unit tests: RAM is a bytearray, registers a list.

It implements ``kernel.machine.Machine`` with no emulator, so kernel logic (boot,
lookups, syscalls) is tested without Unicorn, and every register and byte is visible.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from kernel.abi.arch import Arch, abi_for
from kernel.machine import Machine


class FakeSaved:
    """The fake machine's saved thread: a copy of the register list, and the address
    space installed when it was made (restored with it, as Unicorn's copy does)."""

    def __init__(self, registers: list[int], root: int = 0, asid: int = 0) -> None:
        self.words = list(registers)
        self.root, self.asid = root, asid

    def registers(self) -> list[int]:
        return list(self.words)

    def export(self) -> bytes:
        """root, asid, then the words: 64-bit little-endian each."""
        return struct.pack(f"<{2 + len(self.words)}Q", self.root, self.asid, *self.words)

    @classmethod
    def from_bytes(cls, data: bytes) -> FakeSaved:
        root, asid, *words = struct.unpack(f"<{len(data) // 8}Q", data)
        return cls(words, root, asid)


class FakeMachine(Machine):
    def __init__(self, arch: Arch, ram_size: int) -> None:
        self.arch = arch
        self.clock = 0
        """The MCS clock: tests move it by hand (what instructions would do)."""
        self.deadline: int | None = None
        abi = abi_for(arch)
        self.ram_base = abi.ram_base
        self.ram_size = ram_size
        self.ram = bytearray(ram_size)
        self.registers = [0] * len(abi.user_context)
        prefix = "a" if arch is Arch.RISCV64 else "x"
        self.window_index = [abi.user_context.index(f"{prefix}{i}") for i in range(8)]
        self.root = 0
        self.asid = 0
        self.tlb_flushes = 0
        self.saves = 0
        self.threads: dict[int, FakeSaved] = {}
        """Saved threads by handle, as the Machine interface names them."""
        self.next_handle = 1
        self.changed_asids: list[int] = []
        """Every ASID passed to ``mappings_changed``, in order."""
        self.unmapped_pages: list[tuple[int, int, int]] = []
        """(asid, vaddr, size_bits) of each ``page_unmapped``, in order."""

    def _offset(self, paddr: int, size: int) -> int:
        offset = paddr - self.ram_base
        if offset < 0 or offset + size > self.ram_size:
            raise AssertionError(f"kernel touched {paddr:#x}+{size:#x} outside RAM")
        return offset

    def read_phys(self, paddr: int, size: int) -> bytes:
        offset = self._offset(paddr, size)
        return bytes(self.ram[offset : offset + size])

    def write_phys(self, paddr: int, data: bytes) -> None:
        offset = self._offset(paddr, len(data))
        self.ram[offset : offset + len(data)] = data

    def read_table_entry(self, table_paddr: int, index: int) -> int:
        return int.from_bytes(self.read_phys(table_paddr + 8 * index, 8), "little")

    def read_table(self, table_paddr: int) -> tuple[int, ...]:
        return tuple(int.from_bytes(self.read_phys(table_paddr + 8 * i, 8), "little")
                     for i in range(512))

    def write_table_entry(self, table_paddr: int, index: int, entry: int) -> None:
        self.write_phys(table_paddr + 8 * index, entry.to_bytes(8, "little"))

    def read_syscall_window(self) -> list[int]:
        return [self.registers[i] for i in self.window_index]

    def write_syscall_window(self, values: Sequence[int]) -> None:
        for i, value in zip(self.window_index, values):
            self.registers[i] = value

    def save_context(self) -> list[int]:
        return list(self.registers)

    def load_context(self, registers: Sequence[int]) -> None:
        self.registers = list(registers)

    def save_thread(self, handle: int) -> int:
        self.saves += 1
        saved = self.threads.get(handle)
        if saved is None:
            handle, self.next_handle = self.next_handle, self.next_handle + 1
            saved = self.threads[handle] = FakeSaved([])
        saved.words = list(self.registers)
        saved.root, saved.asid = self.root, self.asid
        return handle

    def thread_registers(self, handle: int) -> list[int]:
        return self.threads[handle].registers()

    def load_thread(self, handle: int, registers: Sequence[int] | None,
                    changes: dict[int, int]) -> None:
        saved = self.threads.get(handle) if handle else None
        if saved is not None:
            self.registers = list(saved.words)
            self.root, self.asid = saved.root, saved.asid
        elif registers is None:
            raise AssertionError(f"load_thread: no saved thread {handle} and no registers")
        if registers is not None:
            self.registers = list(registers)
            return
        for position, value in changes.items():
            self.registers[position] = value

    def forget_thread(self, handle: int) -> None:
        self.threads.pop(handle, None)

    def export_thread(self, handle: int) -> bytes:
        return self.threads[handle].export()

    def import_thread(self, handle: int, data: bytes) -> None:
        assert handle > 0
        self.threads[handle] = FakeSaved.from_bytes(data)
        self.next_handle = max(self.next_handle, handle + 1)

    def set_fpu_enabled(self, enabled: bool) -> None:
        self.fpu_enabled = enabled

    def set_address_space(self, root_paddr: int, asid: int) -> None:
        self.root, self.asid = root_paddr, asid

    def page_tables_changed(self) -> None:
        self.tlb_flushes += 1

    def mappings_changed(self, asid: int) -> None:
        # Like the emulator: only the installed address space's translations are cached.
        self.changed_asids.append(asid)
        if asid == self.asid:
            self.tlb_flushes += 1

    def page_unmapped(self, asid: int, vaddr: int, size_bits: int) -> None:
        self.unmapped_pages.append((asid, vaddr, size_bits))
        super().page_unmapped(asid, vaddr, size_bits)

    def time_now(self) -> int:
        return self.clock

    def set_timer(self, deadline: int) -> None:
        self.deadline = deadline

    def advance_time(self, to: int) -> None:
        self.clock = max(self.clock, to)

    # --- helpers for tests ---------------------------------------------------------------

    def syscall_args(self, number: int, *args: int) -> None:
        """Load a syscall into the window: args to a0.., number to a7/x7."""
        window = [0] * 8
        window[: len(args)] = args
        window[7] = number & ((1 << 64) - 1)
        self.write_syscall_window(window)
