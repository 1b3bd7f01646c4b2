"""A syscall-level debugger over a :class:`~emulator.session.Session` (no click here).

The run stops right AFTER a system call, once the kernel has handled it (scheduling
included): a :class:`kernel.trace.Tracer` decodes each syscall with the kernel's own code
and hands the complete record, result included, to :meth:`Debugger._on_record`, which
raises the private :class:`_Paused` when the run should stop there. ``UnicornMachine``
carries that exception out of Unicorn and re-raises it from ``run``; the kernel's work
for the syscall is already done, so resuming is just calling ``run`` again. ``step``
therefore runs to the END of the next syscall and shows its decoded record.

Commands (one per line, ``#`` starts a comment): ``step``/``s``, ``continue``/``c``,
``break label|thread|cap|syscall NAME``, ``regs``, ``mem ADDR [N]``,
``disas [ADDR] [N]``, ``threads``, ``cspace``, ``objects``, ``cdt``, ``untyped``,
``state`` (all of kernel.render's text), ``help``, ``quit``. A bad command, number or
address prints one ``error: ...`` line and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import capstone

from kernel.abi.arch import Arch
from kernel.abi.constants import CapTag, Syscall
from kernel.abi.labels import label_table
from kernel.arch.paging import PteKind
from kernel.render import snapshot, to_text
from kernel.trace import Tracer, TraceRecord, format_record
from kernel.vspace import walk

from .machine import RunResult
from .session import Session

__all__ = ["DebugError", "Debugger", "HELP"]

MAX_DUMP = 4096
"""Most bytes ``mem`` shows at once."""
MAX_DISAS = 256
"""Most instructions ``disas`` shows at once."""

HELP = """\
step | s              run to the end of the next system call, show its decoded record
continue | c          run to the next breakpoint or the end of the run
break KIND NAME       stop after syscalls matching: label (e.g. UntypedRetype), thread,
                      cap (a cap tag such as untyped_cap), syscall (e.g. DebugPutChar)
regs                  the current thread's registers, in seL4_UserContext order
mem ADDR [N]          hex dump of N bytes (default 64) of the current thread's memory
disas [ADDR] [N]      N instructions (default 8) from ADDR (default: the pc)
threads               every thread, its state and priority (* = current)
cspace | objects | cdt | untyped | state   kernel state (state: all of it)
quit                  stop debugging
(stepi and patch are not available; keystone-engine has no RISC-V for patch.)"""


class DebugError(Exception):
    """A command that cannot be carried out; shown as one ``error:`` line."""


class _Paused(Exception):
    """Raised from the tracer's sink to stop the machine after a syscall."""


@dataclass(frozen=True, slots=True)
class Breakpoint:
    kind: str
    name: str

    def matches(self, record: TraceRecord) -> bool:
        value = {"label": record.label, "thread": record.thread, "cap": record.cap,
                 "syscall": record.syscall}[self.kind]
        return value == self.name


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

    def _resume(self, stepping: bool) -> None:
        if self.result is not None:
            raise DebugError(f"the run has ended ({self.result.message})")
        self._stepping, self._stopped_at, self._hit = stepping, None, None
        try:
            self.result = self.session.run()
        except _Paused:
            record = self._stopped_at
            assert record is not None
            if self._hit is not None:
                self.say(f"breakpoint {self._hit.kind} {self._hit.name}:")
            self.say(format_record(record))
            return
        finally:
            self._stepping = False
        self.say(self.end_message())

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
        words = line.split("#", 1)[0].split()
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
        elif name == "mem":
            self.mem(args)
        elif name == "disas":
            self.disas(args)
        else:
            raise DebugError(f"unknown command {name!r} (try help)")

    def _quit(self) -> None:
        self.quit = True

    def add_break(self, args: list[str]) -> None:
        if len(args) != 2:
            raise DebugError("usage: break label|thread|cap|syscall NAME")
        kind, name = args
        if kind == "label":
            known = set(label_table(self.kernel.arch, self.kernel.config.mcs))
        elif kind == "cap":
            known = {tag.name for tag in CapTag}
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
        for tcb in self.kernel.threads:
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

    def disas(self, args: list[str]) -> None:
        if len(args) > 2:
            raise DebugError("usage: disas [ADDR] [N]")
        address = self._address(args[0]) if args else self._live_registers()[0]
        count = parse_number(args[1], "count") if len(args) > 1 else 8
        if not 1 <= count <= MAX_DISAS:
            raise DebugError(f"count must be 1..{MAX_DISAS}")
        code = self.read_virtual(address, 4 * count, partial=True)
        if self._cs is None:
            if self.kernel.arch is Arch.RISCV64:
                mode = capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC
                self._cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode)
            else:
                self._cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        shown = 0
        for insn in self._cs.disasm(code, address, count):
            self.say(f"{insn.address:#018x}: {insn.bytes.hex():<8}  {insn.mnemonic} {insn.op_str}".rstrip())
            shown += 1
        if shown == 0:
            raise DebugError(f"no instruction decodes at {address:#x}")
