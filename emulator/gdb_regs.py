"""What gdb's register numbers mean on each architecture, and the target description
(``target.xml``) that tells gdb so.

gdb numbers registers in the order of the description's ``<reg>`` elements; ``g`` and
``G`` packets carry them in that order, each little-endian and ``bitsize`` bits wide.
Each register maps to a slot of seL4_UserContext (``kernel.abi.arch.ArchABI.user_context``,
the order of a TCB's saved registers and of ``Machine.save_context``), or to a constant
for registers a user thread cannot change (RISC-V ``zero``).

Only the general-purpose state is described: capsule keeps no floating-point or vector
context per thread, so offering it to gdb would show values of whichever thread ran last.

- RV64: feature ``org.gnu.gdb.riscv.cpu``: ``zero ra sp gp tp t0-t2 fp s1 a0-a7 s2-s11
  t3-t6`` then ``pc``, 64 bits each (gdb's own riscv/64bit-cpu.xml order).
- AArch64: feature ``org.gnu.gdb.aarch64.core``: ``x0-x30 sp pc`` (64 bits) and ``cpsr``
  (32 bits), which at EL0 holds the condition flags (seL4_UserContext's ``spsr``).
"""

from __future__ import annotations

from kernel.abi.arch import ABI_AARCH64, ABI_RISCV64, Arch
from kernel.records import dataclass

__all__ = ["GdbRegister", "RegisterLayout", "layout_for"]


@dataclass(frozen=True, slots=True)
class GdbRegister:
    """gdb's register ``name``; ``slot`` is its index in seL4_UserContext, or None for a
    register that always reads as zero and ignores writes."""

    name: str
    bits: int
    slot: int | None
    type: str = "int"

    @property
    def size(self) -> int:
        return self.bits // 8


@dataclass(frozen=True, slots=True)
class RegisterLayout:
    gdb_arch: str
    """The name ``set architecture`` takes (also in the description)."""
    feature: str
    registers: tuple[GdbRegister, ...]

    def target_xml(self) -> str:
        regs = "\n".join(
            f'    <reg name="{reg.name}" bitsize="{reg.bits}" type="{reg.type}" regnum="{number}"/>'
            for number, reg in enumerate(self.registers)
        )
        return (
            '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            f"<target version=\"1.0\">\n  <architecture>{self.gdb_arch}</architecture>\n"
            f'  <feature name="{self.feature}">\n{regs}\n  </feature>\n</target>\n'
        )

    def encode(self, context: list[int]) -> bytes:
        """The ``g`` payload (hex text) for a thread whose saved registers are ``context``."""
        return b"".join(self.encode_one(number, context) for number in range(len(self.registers)))

    def encode_one(self, number: int, context: list[int]) -> bytes:
        reg = self.registers[number]
        value = 0 if reg.slot is None else context[reg.slot]
        return (value & ((1 << reg.bits) - 1)).to_bytes(reg.size, "little").hex().encode()

    @property
    def g_size(self) -> int:
        """Bytes of register data in a whole ``g``/``G`` packet."""
        return sum(reg.size for reg in self.registers)

    def decode_into(self, number: int, raw: bytes, context: list[int]) -> None:
        """Store register ``number``'s new value ``raw`` (little-endian bytes) in ``context``."""
        reg = self.registers[number]
        if reg.slot is not None:
            context[reg.slot] = int.from_bytes(raw, "little")


def _riscv64() -> RegisterLayout:
    slots = {name: i for i, name in enumerate(ABI_RISCV64.user_context)}
    names = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1",
             *(f"a{i}" for i in range(8)), *(f"s{i}" for i in range(2, 12)),
             *(f"t{i}" for i in range(3, 7)), "pc"]
    types = {"sp": "data_ptr", "gp": "data_ptr", "tp": "data_ptr", "fp": "data_ptr",
             "pc": "code_ptr", "ra": "code_ptr"}
    regs = tuple(
        GdbRegister(name, 64, None if name == "zero" else slots["s0" if name == "fp" else name],
                    types.get(name, "int"))
        for name in names
    )
    return RegisterLayout("riscv:rv64", "org.gnu.gdb.riscv.cpu", regs)


def _aarch64() -> RegisterLayout:
    slots = {name: i for i, name in enumerate(ABI_AARCH64.user_context)}
    regs = (
        *(GdbRegister(f"x{i}", 64, slots[f"x{i}"]) for i in range(31)),
        GdbRegister("sp", 64, slots["sp"], "data_ptr"),
        GdbRegister("pc", 64, slots["pc"], "code_ptr"),
        GdbRegister("cpsr", 32, slots["spsr"]),
    )
    return RegisterLayout("aarch64", "org.gnu.gdb.aarch64.core", regs)


_LAYOUTS = {Arch.RISCV64: _riscv64(), Arch.AARCH64: _aarch64()}


def layout_for(arch: Arch) -> RegisterLayout:
    return _LAYOUTS[arch]
