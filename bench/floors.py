"""Raw-Unicorn floors: what trapping into Python costs before any kernel work.

Each floor runs a two-instruction user-mode loop (trap; branch back) under real paging,
set up exactly as capsule's machine sets it up, with a hook that does the minimum the
floor names. Kernel figures are quoted as ratios to these, measured in the same run.

:func:`bare_unicorn_seconds` is the floor of a whole workload instead: the time Unicorn
alone takes to execute as many instructions, in time slices as the machine runs them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from unicorn import UC_PROT_ALL, Uc

from emulator.cpu import AArch64Backend, CpuBackend, RiscV64Backend
from emulator.fastregs import RegBatch
from emulator.rawhook import add_interrupt_hook
from kernel.abi.arch import Arch
from kernel.model.paging import AARCH64_4K, RV64_SV39, PagingFormat, VMRights

__all__ = ["FLOORS", "bare_unicorn_seconds", "measure_floor"]

_LOOP = {
    # ecall ; j .-4
    Arch.RISCV64: bytes.fromhex("73000000" "6ff0dfff"),
    # svc #0 ; b .-4
    Arch.AARCH64: bytes.fromhex("010000d4" "ffffff17"),
}
_COUNT_LOOP = {
    # addi a0, a0, 1 ; j .-4
    Arch.RISCV64: bytes.fromhex("13051500" "6ff0dfff"),
    # add x0, x0, #1 ; b .-4
    Arch.AARCH64: bytes.fromhex("00040091" "ffffff17"),
}
"""A loop that never traps: guest instructions and nothing else."""
_CODE_VA = 0x10000
_NEVER = 0xFFFF_FFFF_FFFF_FFFC


class _Rig:
    """A CPU in user mode under paging, running the trap loop in one or two ASIDs."""

    def __init__(self, arch: Arch, loop: bytes | None = None) -> None:
        self.cpu: CpuBackend = RiscV64Backend() if arch is Arch.RISCV64 else AArch64Backend()
        self.fmt: PagingFormat = RV64_SV39 if arch is Arch.RISCV64 else AARCH64_4K
        self.uc: Uc = self.cpu.create()
        base = self.cpu.abi.ram_base
        self.uc.mem_map(base, 1 << 20, UC_PROT_ALL)
        self.next_free = base
        code = self._page()
        self.uc.mem_write(code, _LOOP[arch] if loop is None else loop)
        self.roots = [self._address_space(code), self._address_space(code)]
        self.cpu.enter_user_mode(self.uc)
        self.cpu.set_address_space(self.uc, self.roots[0], 1)

    def _page(self) -> int:
        paddr = self.next_free
        self.next_free += 0x1000
        return paddr

    def _address_space(self, code: int) -> int:
        root = self._page()
        table = root
        for level in range(self.fmt.levels - 1):
            nxt = self._page()
            self._write(table, self.fmt.index(level, _CODE_VA), self.fmt.table_entry(nxt))
            table = nxt
        leaf = self.fmt.leaf_entry(code, self.fmt.levels - 1, VMRights.READ_ONLY, True, True)
        self._write(table, self.fmt.index(self.fmt.levels - 1, _CODE_VA), leaf)
        return root

    def _write(self, table: int, index: int, value: int) -> None:
        self.uc.mem_write(table + 8 * index, value.to_bytes(8, "little"))

    def run(self, make_hook: Callable[[_Rig], Callable[[int], None]], traps: int) -> float:
        """Traps per second with the hook ``make_hook(self)`` over ``traps`` traps."""
        count = [0]
        body = make_hook(self)

        def hook(intno: int) -> None:
            body(intno)
            count[0] += 1
            if count[0] >= traps:
                self.uc.emu_stop()

        keep = add_interrupt_hook(self.uc, hook)
        start = time.perf_counter()
        self.uc.emu_start(_CODE_VA, _NEVER, 0, 0)
        elapsed = time.perf_counter() - start
        del keep
        return count[0] / elapsed


def _empty(rig: _Rig) -> Callable[[int], None]:
    return lambda intno: None


def _read8_write1(rig: _Rig) -> Callable[[int], None]:
    window = RegBatch(rig.uc, rig.cpu.syscall_regs)
    result = RegBatch(rig.uc, rig.cpu.syscall_regs[:1])

    def hook(intno: int) -> None:
        window.read()
        result.write((0,))

    return hook


def _switch(same_space: bool) -> Callable[[_Rig], Callable[[int], None]]:
    def make(rig: _Rig) -> Callable[[int], None]:
        uc = rig.uc
        contexts = [uc.context_save(), uc.context_save()]
        state = [0]

        def hook(intno: int) -> None:
            current = state[0]
            uc.context_update(contexts[current])
            state[0] = nxt = 1 - current
            uc.context_restore(contexts[nxt])
            if not same_space:
                rig.cpu.set_address_space(uc, rig.roots[nxt], nxt + 1, current + 1)

        return hook

    return make


FLOORS: dict[str, Callable[[_Rig], Callable[[int], None]]] = {
    "trap_empty_hook": _empty,
    "trap_read8_write1": _read8_write1,
    "switch_same_space": _switch(True),
    "switch_other_space": _switch(False),
}


def measure_floor(arch: Arch, name: str, traps: int) -> float:
    """Rate per second of the floor ``name`` on ``arch`` (a fresh rig each time)."""
    return _Rig(arch).run(FLOORS[name], traps)


def bare_unicorn_seconds(arch: Arch, instructions: int, slice_instructions: int) -> float:
    """Seconds bare Unicorn takes to execute ``instructions`` guest instructions: a loop
    that never traps (:data:`_COUNT_LOOP`, user mode under paging as on the machine), in
    ``emu_start`` calls of ``count=slice_instructions`` (the last one shorter), as the
    machine runs time slices of the kernel's tick size. No hook, no kernel: what the
    execution alone costs in Unicorn."""
    rig = _Rig(arch, _COUNT_LOOP[arch])
    uc, pc_reg = rig.uc, rig.cpu.pc_reg
    left = instructions
    start = time.perf_counter()
    pc = _CODE_VA
    while left > 0:
        run = min(left, slice_instructions)
        uc.emu_start(pc, _NEVER, 0, run)
        pc = uc.reg_read(pc_reg)
        left -= run
    return time.perf_counter() - start
