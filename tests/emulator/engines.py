"""Bare Unicorn engines for the emulator's tests, set up as UnicornMachine sets up its own."""

from __future__ import annotations

from unicorn import Uc
from unicorn.unicorn_const import UC_HOOK_INTR, UC_PROT_ALL

from emulator.cpu import CpuBackend, backend_for
from kernel.abi.arch import Arch

__all__ = ["NEVER", "RAM", "engine"]

RAM = 1 << 20
NEVER = 0xFFFF_FFFF_FFFF_FFFF


def engine(arch: Arch) -> tuple[Uc, CpuBackend, int]:
    """A bare engine (MMU off) with RAM as its first mapping, as UnicornMachine's, that
    stops at every trap; with its CPU back end and RAM's base."""
    cpu = backend_for(arch)
    uc = cpu.create()
    base = cpu.abi.ram_base
    uc.mem_map(base, RAM, UC_PROT_ALL)
    uc.hook_add(UC_HOOK_INTR, lambda uc, intno, data: uc.emu_stop())
    return uc, cpu, base
