"""A syscall-level debugger over a :class:`~emulator.session.Session` (no click here).

The run stops right AFTER a system call, once the kernel has handled it (scheduling
included): a :class:`kernel.views.trace.Tracer` decodes each syscall with the kernel's own code
and hands the complete record, result included, to :meth:`Debugger._on_record`, which
raises the private :class:`_Paused` when the run should stop there. ``UnicornMachine``
carries that exception out of Unicorn and re-raises it from ``run``; the kernel's work
for the syscall is already done, so resuming is just calling ``run`` again. ``step``
therefore runs to the END of the next syscall and shows its decoded record.

Commands (one per line, ``#`` starts a comment): ``step``/``s``, ``stepi [N]``/``si``,
``continue``/``c``, ``break label|thread|cap|syscall NAME``, ``break *ADDR``,
``patch ADDR "insn"`` / ``patch ADDR hex:BYTES``, ``regs``, ``mem ADDR [N]``,
``disas [ADDR] [N]``, ``threads``, ``cspace``, ``objects``, ``cdt``, ``untyped``,
``state`` (all of kernel.views.render's text), ``help``, ``quit``. A bad command, number or
address prints one ``error: ...`` line and changes nothing.

Instruction-level stops use the machine's pauses (``emulator.machine``): ``stepi`` runs a
counted number of instructions, ``break *ADDR`` is a code hook on exactly ADDR, and the
time slice carries over a pause, so stopping never changes what the guest does. ``patch``
writes through the current thread's page tables into the physical frame (whatever the
mapping's rights) and drops Unicorn's translated code so the new bytes are executed;
AArch64 instructions are assembled with keystone-engine, which has no RISC-V: there the
patch is given as raw bytes (``hex:13000000`` is ``nop``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import capstone

from kernel.abi.arch import Arch
from kernel.abi.constants import CapTag, Syscall
from kernel.abi.labels import label_table
from kernel.model.page_tables import walk
from kernel.model.paging import PteKind
from kernel.views.render import snapshot, to_text
from kernel.views.trace import Tracer, TraceRecord, format_record

from .machine import RunResult
from .session import Session

__all__ = ["DebugError", "Debugger", "HELP"]

MAX_DUMP = 4096
"""Most bytes ``mem`` shows at once."""
MAX_DISAS = 256
"""Most instructions ``disas`` shows at once."""

HELP = """\
step | s              run to the end of the next system call, show its trace line and
                      the invocation record the kernel decoded ("decoded:")
stepi [N] | si [N]    run N instructions (default 1), show the next one
continue | c          run to the next breakpoint or the end of the run
break KIND NAME       stop after syscalls matching: label (e.g. UntypedRetype), thread,
                      cap (a cap type such as untyped), syscall (e.g. DebugPutChar)
break *ADDR           stop before the instruction at ADDR executes (any thread)
patch ADDR "INSN"     assemble INSN (AArch64 only: keystone-engine has no RISC-V) and
                      write it at ADDR of the current thread's address space
patch ADDR hex:BYTES  write raw bytes instead (the way on RISC-V: hex:13000000 is nop)
regs                  the current thread's registers, in seL4_UserContext order
mem ADDR [N]          hex dump of N bytes (default 64) of the current thread's memory
disas [ADDR] [N]      N instructions (default 8) from ADDR (default: the pc)
threads               every thread, its state and priority (* = current)
cspace | objects | cdt | untyped | state   kernel state (state: all of it)
quit                  stop debugging"""


class DebugError(Exception):
    """A command that cannot be carried out; shown as one ``error:`` line."""


class _Paused(Exception):
    """Raised from the tracer's sink to stop the machine after a syscall."""


@dataclass(frozen=True, slots=True)
class Breakpoint:
    kind: str
    name: str

    def matches(self, record: TraceRecord) -> bool:
        if self.kind == "address":
            return False  # a code hook in the machine, not a syscall record
        cap = None if record.cap is None else record.cap.removesuffix("_cap")
        value = {"label": record.label, "thread": record.thread, "cap": cap,
                 "syscall": record.syscall}[self.kind]
        return value == self.name


def _strip_comment(line: str) -> str:
    """``line`` without its ``#`` comment; a ``#`` inside double quotes is kept (AArch64
    immediates in ``patch ADDR "mov x0, #1"``)."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:index]
    return line


def parse_number(text: str, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise DebugError(f"{what}: {text!r} is not a number") from None
    if value < 0:
        raise DebugError(f"{what}: {value} is negative")
    return value


class Debugger:
    """Drives ``session`` one command at a time; every line goes to ``say``."""

    def __init__(self, session: Session, say: Callable[[str], None]) -> None:
        self.session = session
        self.kernel = session.kernel
        self.machine = session.machine
        self.say = say
        self.breakpoints: list[Breakpoint] = []
        self.result: RunResult | None = None
        self.quit = False
        self._stepping = False
        self._stopped_at: TraceRecord | None = None
        self._hit: Breakpoint | None = None
        self._cs: capstone.Cs | None = None
        Tracer(self.kernel, self._on_record)

    # --- running ----------------------------------------------------------------------

    def _on_record(self, record: TraceRecord) -> None:
        if self._stepping:
            self._stopped_at = record
            raise _Paused
        for point in self.breakpoints:
            if point.matches(record):
                self._stopped_at, self._hit = record, point
                raise _Paused

    def _resume(self, stepping: bool, instructions: int | None = None) -> None:
        if self.result is not None:
            raise DebugError(f"the run has ended ({self.result.message})")
        self._stepping, self._stopped_at, self._hit = stepping, None, None
        try:
            result = self.session.run(instructions)
            if result.kind == "pause" and result.breakpoint is not None:
                self.say(f"breakpoint *{result.breakpoint:#x}:")
                self._show_pc()
                return
            if result.kind == "limit" and instructions is not None:
                self._show_pc()
                return
            self.result = result
        except _Paused:
            record = self._stopped_at
            assert record is not None
            if self._hit is not None:
                self.say(f"breakpoint {self._hit.kind} {self._hit.name}:")
            self.say(format_record(record))
            if record.decoded is not None:
                self.say(f"  decoded: {record.decoded}")
            return
        finally:
            self._stepping = False
        self.say(self.end_message())

    def _show_pc(self) -> None:
        """The current thread's name and the instruction it runs next."""
        current = self.kernel.current
        if current is None:
            raise DebugError("no current thread")
        self.say(f"thread {current.name}")
        self.disas(["1"], at_pc=True)

    def stepi(self, args: list[str]) -> None:
        if len(args) > 1:
            raise DebugError("usage: stepi [N]")
        count = parse_number(args[0], "count") if args else 1
        if count < 1:
            raise DebugError("count must be at least 1")
        self._resume(stepping=False, instructions=count)

    def end_message(self) -> str:
        result = self.result
        assert result is not None
        return f"run ended: {result.kind} (status {result.status}): {result.message}"

    def finish(self) -> RunResult:
        """Run to the end, breakpoints disabled (the script ran out)."""
        self.breakpoints.clear()
        if self.result is None:
            self._resume(stepping=False)
        assert self.result is not None
        return self.result

    # --- commands ---------------------------------------------------------------------

    def execute(self, line: str) -> None:
        """Carry out one command line; a bad one prints ``error: ...`` and changes nothing."""
        words = _strip_comment(line).split()
        if not words:
            return
        try:
            self._dispatch(words[0], words[1:])
        except DebugError as error:
            self.say(f"error: {error}")

    def _dispatch(self, name: str, args: list[str]) -> None:
        simple: dict[str, Callable[[], None]] = {
            "step": lambda: self._resume(True), "s": lambda: self._resume(True),
            "continue": lambda: self._resume(False), "c": lambda: self._resume(False),
            "regs": self.regs, "threads": self.threads, "help": lambda: self.say(HELP),
            "quit": self._quit, "q": self._quit,
        }
        if name in simple:
            if args:
                raise DebugError(f"{name} takes no arguments")
            simple[name]()
        elif name in ("cspace", "objects", "cdt", "untyped", "state"):
            if args:
                raise DebugError(f"{name} takes no arguments")
            self.state(name)
        elif name == "break":
            self.add_break(args)
        elif name in ("stepi", "si"):
            self.stepi(args)
        elif name == "patch":
            self.patch(args)
        elif name == "mem":
            self.mem(args)
        elif name == "disas":
            self.disas(args)
        else:
            raise DebugError(f"unknown command {name!r} (try help)")

    def _quit(self) -> None:
        self.quit = True

    def add_break(self, args: list[str]) -> None:
        if len(args) == 1 and args[0].startswith("*"):
            address = self._address(args[0][1:])
            if not self.machine.add_breakpoint(address):
                raise DebugError(f"there already is a breakpoint at {address:#x}")
            self.breakpoints.append(Breakpoint("address", f"{address:#x}"))
            self.say(f"breakpoint {len(self.breakpoints)}: *{address:#x}")
            return
        if len(args) != 2:
            raise DebugError("usage: break label|thread|cap|syscall NAME, or break *ADDR")
        kind, name = args
        if kind == "label":
            known = set(label_table(self.kernel.arch, self.kernel.config.mcs))
        elif kind == "cap":
            # Caps are named as the trace and the cspace view name them (endpoint); the
            # tag's own name (endpoint_cap) is accepted too.
            name = name.removesuffix("_cap")
            known = {tag.name.removesuffix("_cap") for tag in CapTag}
        elif kind == "syscall":
            known = {s.name.removeprefix("seL4_Sys") for s in Syscall}
        elif kind == "thread":
            known = None  # threads may be created later
        else:
            raise DebugError(f"unknown breakpoint kind {kind!r} (label, thread, cap, syscall)")
        if known is not None and name not in known:
            raise DebugError(f"no {kind} named {name!r}")
        self.breakpoints.append(Breakpoint(kind, name))
        self.say(f"breakpoint {len(self.breakpoints)}: {kind} {name}")

    def _live_registers(self) -> list[int]:
        if self.kernel.current is None:
            raise DebugError("no current thread")
        return self.machine.save_context()

    def regs(self) -> None:
        values = self._live_registers()
        assert self.kernel.current is not None
        self.say(f"thread {self.kernel.current.name}")
        for name, value in zip(self.kernel.abi.user_context, values, strict=False):
            self.say(f"{name:<12} {value:#018x}")

    def threads(self) -> None:
        for tcb in self.kernel.threads.values():
            mark = "*" if tcb is self.kernel.current else " "
            self.say(f"{mark} {tcb.name} tcb={tcb.paddr:#x} state={tcb.state.value} "
                     f"priority={tcb.priority}")

    def state(self, section: str) -> None:
        text = to_text(snapshot(self.kernel))
        if section != "state":
            starts = {"objects": "objects (", "untyped": "untypeds (", "cdt": "derivation ("}
            lines = text.splitlines()
            heads = [i for i, line in enumerate(lines) if line.startswith(tuple(starts.values()))]
            if section == "cspace":
                lines = lines[: heads[0]] if heads else lines
            else:
                first = next(i for i in heads if lines[i].startswith(starts[section]))
                later = [i for i in heads if i > first]
                lines = lines[first : later[0] if later else len(lines)]
            text = "\n".join(lines) + "\n"
        for line in text.rstrip("\n").splitlines():
            self.say(line)

    # --- guest memory -----------------------------------------------------------------

    def read_virtual(self, vaddr: int, size: int, partial: bool = False) -> bytes:
        """``size`` bytes of the current address space at ``vaddr``, page by page."""
        self._live_registers()
        fmt, out = self.machine.paging, bytearray()
        page = 1 << fmt.shifts[-1]
        address = vaddr
        while len(out) < size:
            result = walk(self.machine, fmt, self.machine.root, address)
            if result.kind is not PteKind.LEAF:
                if partial and out:
                    break
                raise DebugError(f"address {address:#x} is not mapped")
            chunk = min(size - len(out), page - address % page)
            out += self.machine.read_phys(result.paddr, chunk)
            address += chunk
        return bytes(out)

    def _address(self, text: str) -> int:
        value = parse_number(text, "address")
        if value >= 1 << 64:
            raise DebugError(f"address {value:#x} does not fit in 64 bits")
        return value

    def mem(self, args: list[str]) -> None:
        if not 1 <= len(args) <= 2:
            raise DebugError("usage: mem ADDR [N]")
        address = self._address(args[0])
        size = parse_number(args[1], "size") if len(args) > 1 else 64
        if not 1 <= size <= MAX_DUMP:
            raise DebugError(f"size must be 1..{MAX_DUMP}")
        data = self.read_virtual(address, size)
        for offset in range(0, len(data), 16):
            row = data[offset : offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
            self.say(f"{address + offset:#018x}: {row.hex(' '):<47}  |{text}|")

    def disas(self, args: list[str], at_pc: bool = False) -> None:
        if len(args) > 2:
            raise DebugError("usage: disas [ADDR] [N]")
        if at_pc:
            address, count = self._live_registers()[0], parse_number(args[0], "count")
        else:
            address = self._address(args[0]) if args else self._live_registers()[0]
            count = parse_number(args[1], "count") if len(args) > 1 else 8
        if not 1 <= count <= MAX_DISAS:
            raise DebugError(f"count must be 1..{MAX_DISAS}")
        code = self.read_virtual(address, 4 * count, partial=True)
        shown = 0
        for insn in self._capstone().disasm(code, address, count):
            self.say(f"{insn.address:#018x}: {insn.bytes.hex():<8}  {insn.mnemonic} {insn.op_str}".rstrip())
            shown += 1
        if shown == 0:
            raise DebugError(f"no instruction decodes at {address:#x}")

    def _capstone(self) -> capstone.Cs:
        if self._cs is None:
            if self.kernel.arch is Arch.RISCV64:
                mode = capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC
                self._cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode)
            else:
                self._cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        return self._cs

    # --- patching ---------------------------------------------------------------------

    def _assemble(self, text: str, address: int) -> bytes:
        if text.startswith("hex:"):
            try:
                code = bytes.fromhex(text[4:])
            except ValueError:
                raise DebugError(f"{text[4:]!r} is not hex bytes") from None
            if not code:
                raise DebugError("no bytes to patch")
            return code
        if self.kernel.arch is not Arch.AARCH64:
            raise DebugError("keystone-engine cannot assemble RISC-V: give the encoding "
                             "as hex:BYTES (e.g. hex:13000000 for nop)")
        import keystone

        try:
            encoding, _ = keystone.Ks(keystone.KS_ARCH_ARM64, keystone.KS_MODE_LITTLE_ENDIAN).asm(
                text, address)
        except keystone.KsError as error:
            raise DebugError(f"cannot assemble {text!r}: {error}") from None
        if not encoding:
            raise DebugError(f"{text!r} assembles to nothing")
        return bytes(encoding)

    def patch(self, args: list[str]) -> None:
        """``patch ADDR "insn"`` or ``patch ADDR hex:BYTES`` (the line is re-split here:
        the instruction may contain spaces and commas)."""
        if len(args) < 2:
            raise DebugError('usage: patch ADDR "INSN" | patch ADDR hex:BYTES')
        address = self._address(args[0])
        text = " ".join(args[1:]).strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].strip()
        code = self._assemble(text, address)
        pieces = []
        for offset in range(len(code)):  # every byte's frame, checked before any write
            result = walk(self.machine, self.machine.paging, self.machine.root, address + offset)
            if result.kind is not PteKind.LEAF:
                raise DebugError(f"address {address + offset:#x} is not mapped")
            pieces.append(result.paddr)
        self._live_registers()
        old = self.read_virtual(address, len(code))
        for paddr, byte in zip(pieces, code, strict=True):
            self.machine.write_phys(paddr, bytes((byte,)))
        self.machine.flush_translations()  # Unicorn keeps translated code otherwise
        self.say(f"patched {address:#x}: {old.hex()} -> {code.hex()}")
        self.disas([f"{address:#x}", "1"])
