"""A syscall-level debugger over a :class:`capsule.Machine` (no click here).

It drives the machine through the Python API: every run command is one
:meth:`capsule.Machine.run` with stop conditions (``step``: the next system call;
breakpoints: :class:`capsule.AfterSyscall`, :class:`capsule.AfterInvocation` and
:class:`capsule.AtAddress`; ``stepi``: an instruction count), registers and memory go
through :meth:`~capsule.Machine.registers`, :meth:`~capsule.Machine.read` and
:meth:`~capsule.Machine.write`, the kernel state through
:meth:`~capsule.Machine.snapshot`, snapshots through :meth:`~capsule.Machine.checkpoint`
and :meth:`~capsule.Machine.restore`. Below the API it reads only what it shows that the
API does not model: the thread numbers gdb's stub gives (:class:`emulator.gdb_target.GdbTarget`)
and which VSpace a thread runs in (the root task's symbols apply in its own only).

A syscall stop is right AFTER the system call, once the kernel has handled it
(scheduling included), so ``step`` runs to the END of the next syscall and shows its
trace line (numbered since boot) and the record the kernel decoded.

Commands (one per line, ``#`` starts a comment): ``step``/``s``, ``stepi [N]``/``si``,
``nexti [N]``/``ni``, ``continue``/``c``, ``break label|thread|cap|syscall NAME``,
``break SYMBOL``, ``break *ADDR``, ``patch ADDR "insn"`` / ``patch ADDR hex:BYTES``,
``regs``, ``mem ADDR [N]``, ``disas [ADDR] [N]``, ``threads``, ``thread [N|NAME]``,
``cspace [all]``, ``objects``, ``cdt``, ``untyped``, ``sched`` (MCS: scheduling contexts,
reply objects, call stacks, kernel.views.mcs), ``state`` (kernel.views.render's text),
``snapshot [FILE]``, ``restore [N|FILE]``, ``snapshots``, ``help``, ``quit``.
A bad command, number or address prints one ``error: ...`` line and changes nothing.
Wherever an address is asked for, a symbol of the root task's ELF does too (``main``,
``main+0x10``); addresses are shown with the symbol they fall in (``<main+0x10>``).

Threads: ``threads`` lists them with the numbers gdb's stub gives them
(:class:`emulator.gdb_target.GdbTarget`); ``thread N`` selects the thread whose
registers, memory and code ``regs``, ``mem``, ``disas`` and ``patch`` show. A stop
selects the thread it concerns: after a syscall the thread that made it, at a
breakpoint or after ``stepi`` the thread on the machine.

Going back: ``snapshot`` keeps the whole system as it is now (numbered 1, 2, ...; with
FILE also written as a snapshot file, :mod:`emulator.snapshot`), ``restore N`` (default:
the last) replaces the session with a fresh machine and kernel in that state, so a user
can go back to an earlier system call and try again (a patched instruction, another
breakpoint); ``restore FILE`` takes up a snapshot file. Breakpoints stay; the guest's
output from that point on is printed again as it runs again. What was attached to the
kernel from outside (the kernel log) is attached again through ``on_machine``.

Stopping never changes what the guest does (the API's promise: the time slice carries
over a stop): ``stepi`` runs a counted number of instructions, ``break *ADDR`` stops
before the instruction at exactly ADDR. ``nexti``
is ``stepi`` except that a call runs to its return (a temporary breakpoint there, which
only the same thread stops at). ``patch`` writes through the selected thread's page
tables into the physical frame (whatever the mapping's rights) and drops Unicorn's
translated code so the new bytes are executed; AArch64 instructions are assembled with
keystone-engine (an optional package: without it, one line says so), which has no
RISC-V: there the patch is given as raw bytes (``hex:13000000`` is ``nop``).

:meth:`Debugger.repeat_of` says what an empty line repeats, as gdb: the last ``step``,
``stepi``, ``nexti`` or ``continue``, and ``disas`` / ``mem`` go on from where they
stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import capstone

from bootimage import ImageError
from bootimage.symbols import SymbolTable, read_symbols
from capsule.conditions import AfterInvocation, AfterSyscall, AtAddress, Condition
from capsule.errors import CapsuleError, LoadError, MemoryAccessError, RunEnded
from capsule.machine import Machine
from capsule.records import Stop, StopKind, ThreadInfo
from emulator.gdb_target import GdbTarget
from emulator.snapshot import (
    Snapshot,
    SnapshotError,
    load_snapshot,
    save_snapshot,
)
from kernel.abi.arch import Arch
from kernel.abi.constants import CapTag, InitialCap, Syscall
from kernel.abi.extensions import configured_labels
from kernel.core.threads import vspace_root_of
from kernel.model.caps import ThreadCap
from kernel.model.cnode import CNode
from kernel.model.faults import IndexRequest
from kernel.model.tcb import TCB
from kernel.records import dataclass
from kernel.views.mcs import mcs_lines, mcs_view, thread_mcs, thread_note
from kernel.views.narrow import BootCaps, hide_boot_caps
from kernel.views.render import hidden_line, to_text

__all__ = ["DebugError", "Debugger", "HELP"]

MAX_DUMP = 4096
"""Most bytes ``mem`` shows at once."""
MAX_DISAS = 256
"""Most instructions ``disas`` shows at once."""

HELP = """\
step | s              run to the end of the next system call, show its trace line and
                      the invocation record the kernel decoded ("decoded:")
stepi [N] | si [N]    run N instructions (default 1), show the next one
nexti [N] | ni [N]    as stepi, but a call runs until it returns
continue | c          run to the next breakpoint or the end of the run (Ctrl-C
                      stops it where it is and comes back to the prompt)
(empty line)          repeat the last step, stepi, nexti or continue; go on after disas, mem
break KIND NAME       stop after syscalls matching: label (e.g. UntypedRetype), thread,
                      cap (a cap type such as untyped), syscall (e.g. DebugPutChar)
break SYMBOL | *ADDR  stop before the instruction at a symbol (main, main+0x10) or an
                      address executes (any thread)
patch ADDR "INSN"     assemble INSN (AArch64, with keystone-engine: RISC-V has none) and
                      write it at ADDR of the selected thread's address space
patch ADDR hex:BYTES  write raw bytes instead (the way on RISC-V: hex:13000000 is nop)
regs                  the selected thread's registers, in seL4_UserContext order
mem ADDR [N]          hex dump of N bytes (default 64) of the selected thread's memory
disas [ADDR] [N]      N instructions (default 8) from ADDR (default: the selected pc)
threads               every thread: number, name, state, priority, pc (* = selected);
                      MCS: the scheduling context it runs on (or passive), its reply object
thread [N | NAME]     select thread N (as threads numbers them); without N: which is
cspace [all]          the CSpaces (all: also boot's image caps and unused untypeds)
objects | cdt | untyped | state   more kernel state (state: all of it)
sched                 MCS: scheduling contexts (budget, period, refills, consumed, the
                      thread on it), the call stacks they are lent along, reply objects
snapshot [FILE]       keep the whole system as it is now, numbered (FILE: also save it
                      there, for capsule resume or capsule debug FILE)
restore [N | FILE]    go back to snapshot N (default: the last) or to a snapshot file
snapshots             list the snapshots kept
quit                  stop debugging
ADDR may be a number or a symbol of the root task (main, main+0x10)."""


class DebugError(Exception):
    """A command that cannot be carried out; shown as one ``error:`` line."""


class _Stop(Enum):
    """Why :meth:`Debugger._resume` returned."""

    SYSCALL = "syscall"
    BREAKPOINT = "breakpoint"
    STEPPED = "stepped"
    REACHED = "reached"
    """A condition the caller gave (``until``) was met: nothing said."""
    INTERRUPTED = "interrupted"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Breakpoint:
    kind: str
    name: str

    def condition(self) -> Condition:
        """The API's stop condition for this breakpoint."""
        if self.kind == "address":
            return AtAddress(int(self.name, 16))
        if self.kind == "label":
            return AfterInvocation(self.name)
        if self.kind == "thread":
            return AfterSyscall(thread=self.name)
        if self.kind == "cap":
            return AfterSyscall(cap=f"{self.name}_cap")
        return AfterSyscall(name=self.name)


def _describe(taken: Snapshot) -> str:
    info = taken.info
    count = "unknown" if info.instructions is None else info.instructions
    return f"instruction {count}, kernel entry {info.kernel_entries}"


def _read_symbols(elf: bytes) -> SymbolTable:
    try:
        return read_symbols(elf)
    except ImageError:
        return SymbolTable([])


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


_SYMBOL_EXPRESSION = re.compile(r"([A-Za-z_.$][\w.$]*)(?:\+(\w+))?")
_REPEATED = frozenset({"step", "s", "stepi", "si", "nexti", "ni", "continue", "c"})


class Debugger:
    """Drives ``machine`` one command at a time; every line goes to ``say``. ``symbols``
    are the root task's (:func:`bootimage.symbols.read_symbols`); ``on_machine`` is
    called with the machine a ``restore`` makes (to attach output sinks to it again)."""

    def __init__(self, machine: Machine, say: Callable[[str], None],
                 symbols: SymbolTable | None = None, *,
                 on_machine: Callable[[Machine], None] | None = None) -> None:
        self.say = say
        self.symbols = symbols if symbols is not None else SymbolTable([])
        self.on_machine = on_machine
        self.snapshots: list[Snapshot] = []
        self.breakpoints: list[Breakpoint] = []
        self.result: Stop | None = None
        """How the run ended, once it has."""
        self._ending: Stop | None = None
        """The run ended in the very kernel entry of the last stop: said at the next run."""
        self.interrupted: Stop | None = None
        """The last command's run was interrupted (Ctrl-C: ``emulator.interrupt``) here;
        the run can go on."""
        self.quit = False
        self.selected: TCB | None = None
        """The thread ``regs``/``mem``/``disas`` show; None: the one on the machine."""
        self._next: dict[str, tuple[int, int]] = {}
        """``disas`` / ``mem``: where an empty line goes on (address, count)."""
        self._cs: capstone.Cs | None = None
        self._use(machine)

    def _use(self, machine: Machine) -> None:
        """Debug ``machine`` from now on."""
        self.machine = machine
        self.kernel = machine.session.kernel
        self.target = GdbTarget(machine.session)
        """gdb's thread numbers and a thread's context, as the stub gives them."""
        self._image_root = self._root_task_vspace()
        """The root task's VSpace: the symbols name addresses in it."""

    def _root_task_vspace(self) -> int:
        """The VSpace of the root task's thread (boot put its cap in the root CNode);
        failing that, of the thread on the machine."""
        root = self.kernel.current
        cnode = self.kernel.objects.get(self.machine.session.report.root_cnode)
        if isinstance(cnode, CNode):
            cap = cnode.slots[InitialCap.seL4_CapInitThreadTCB].cap
            if isinstance(cap, ThreadCap):
                root = self.kernel.threads.get(cap.paddr, root)
        return vspace_root_of(self.kernel, root)[0] if root is not None else 0

    # --- running ----------------------------------------------------------------------

    def _resume(self, stepping: bool, instructions: int | None = None, quiet: bool = False,
                until: tuple[Condition, ...] = ()) -> _Stop:
        """Run on to the next syscall (``stepping``), ``instructions`` instructions, a
        breakpoint, a condition in ``until`` or the end; say where it stopped
        (``quiet``: not after counted instructions nor at an ``until`` condition, which
        the caller shows)."""
        if self.result is not None:
            raise DebugError(f"the run has ended ({self.result.message})")
        self.interrupted = None
        self.selected = None
        if self._ending is not None:
            self.result, self._ending = self._ending, None
            self.say(self.end_message())
            return _Stop.ENDED
        points = {point.condition(): point for point in self.breakpoints
                  if stepping is False or point.kind == "address"}
        conditions = ((AfterSyscall(),) if stepping else ()) + until + tuple(points)
        try:
            stop = self.machine.run(conditions, max_instructions=instructions)
        except RunEnded as error:
            raise DebugError(str(error)) from None
        if stop.kind is StopKind.INTERRUPT:
            self.interrupted = stop
            count = stop.instructions
            self.say(f"{stop.message}, {'unknown' if count is None else count} instructions run")
            self._show_pc()
            return _Stop.INTERRUPTED
        if stop.syscall is not None:
            point = points.get(stop.condition) if stop.condition is not None else None
            if point is not None and not stepping:
                self.say(f"breakpoint {point.kind} {point.name}:")
            self.say(stop.syscall.text)
            if stop.syscall.decoded is not None:
                self.say(f"  decoded: {stop.syscall.decoded}")
            caller = self.kernel.threads.get(stop.syscall.tcb)
            if caller is not None:
                self.selected = caller
                pc = self.target.context(caller)[0]
                self.say(f"  at {pc:#x}{self._where(pc, caller)}")
            if stop.ended:
                self._ending = stop
            return _Stop.SYSCALL
        if stop.ended:
            self.result = stop
            self.say(self.end_message())
            return _Stop.ENDED
        if stop.condition is not None and stop.condition in until:
            return _Stop.REACHED
        if isinstance(stop.condition, AtAddress):
            address = stop.condition.vaddr
            self.say(f"breakpoint *{address:#x}{self._where(address)}:")
            self._show_pc()
            return _Stop.BREAKPOINT
        if not quiet:  # an instruction count ran out
            self._show_pc()
        return _Stop.STEPPED

    def _show_pc(self) -> None:
        """The selected thread's name and the instruction it runs next."""
        thread = self._thread()
        self.say(f"thread {thread.name}")
        self.disas(["1"], at_pc=True)

    def step(self) -> None:
        self._resume(stepping=True)

    def cont(self) -> None:
        self._resume(stepping=False)

    def _count(self, args: list[str], usage: str) -> int:
        if len(args) > 1:
            raise DebugError(f"usage: {usage}")
        count = parse_number(args[0], "count") if args else 1
        if count < 1:
            raise DebugError("count must be at least 1")
        return count

    def stepi(self, args: list[str]) -> None:
        self._resume(stepping=False, instructions=self._count(args, "stepi [N]"))

    def nexti(self, args: list[str]) -> None:
        """Instructions of the thread on the machine, a call with all it calls."""
        for _ in range(self._count(args, "nexti [N]")):
            thread = self._thread(current=True)
            pc = self.target.context(thread)[0]
            call = self._decode(thread, pc)
            if call is None or not call.group(capstone.CS_GRP_CALL):
                stop = self._resume(stepping=False, instructions=1, quiet=True)
            else:
                stop = self._run_to(pc + call.size, thread)
            if stop is not _Stop.STEPPED:
                return  # a syscall breakpoint, a breakpoint or the end: already shown
        self._show_pc()

    def _run_to(self, address: int, thread: TCB) -> _Stop:
        """Run until ``thread`` reaches ``address`` (other threads, and threads of its
        name in other VSpaces, pass it); STEPPED when it did."""
        until = AtAddress(address, thread.name)
        while True:
            stop = self._resume(stepping=False, quiet=True, until=(until,))
            if stop is not _Stop.REACHED:
                return stop  # a breakpoint of the user's, a syscall one, the end: shown
            if self.kernel.current is thread:
                return _Stop.STEPPED

    def end_message(self) -> str:
        result = self.result
        assert result is not None
        return f"run ended: {result.kind.value} (status {result.status}): {result.message}"

    def finish(self) -> Stop:
        """Run to the end, breakpoints disabled (the script ran out). An interrupted
        run's result is of kind INTERRUPT."""
        self.breakpoints.clear()
        if self.result is None:
            self._resume(stepping=False)
        if self.interrupted is not None:
            return self.interrupted
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

    def repeat_of(self, line: str) -> str | None:
        """What an empty line after ``line`` does (None: nothing), as gdb: run commands
        repeat, ``disas`` and ``mem`` go on after what they showed."""
        words = _strip_comment(line).split()
        if not words:
            return None
        if words[0] in _REPEATED:
            return line
        if words[0] in self._next:
            address, count = self._next[words[0]]
            return f"{words[0]} {address:#x} {count}"
        return None

    def _dispatch(self, name: str, args: list[str]) -> None:
        simple: dict[str, Callable[[], None]] = {
            "step": self.step, "s": self.step, "continue": self.cont, "c": self.cont,
            "regs": self.regs, "threads": self.threads, "help": lambda: self.say(HELP),
            "sched": self.sched,
            "quit": self._quit, "q": self._quit,
        }
        if name in simple:
            if args:
                raise DebugError(f"{name} takes no arguments")
            simple[name]()
        elif name in ("objects", "cdt", "untyped", "state"):
            if args:
                raise DebugError(f"{name} takes no arguments")
            self.state(name)
        elif name == "cspace":
            if args not in ([], ["all"]):
                raise DebugError("usage: cspace [all]")
            self.cspace(show_all=bool(args))
        elif name == "break":
            self.add_break(args)
        elif name == "snapshot":
            self.take_snapshot(args)
        elif name == "restore":
            self.restore(args)
        elif name == "snapshots":
            if args:
                raise DebugError("snapshots takes no arguments")
            self.list_snapshots()
        elif name in ("stepi", "si"):
            self.stepi(args)
        elif name in ("nexti", "ni"):
            self.nexti(args)
        elif name == "thread":
            self.thread(args)
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
        if len(args) == 1:
            address = self._address(args[0].removeprefix("*"))
            if Breakpoint("address", f"{address:#x}") in self.breakpoints:
                raise DebugError(f"there already is a breakpoint at {address:#x}")
            self.breakpoints.append(Breakpoint("address", f"{address:#x}"))
            self.say(f"breakpoint {len(self.breakpoints)}: *{address:#x}{self._where(address)}")
            return
        if len(args) != 2:
            raise DebugError("usage: break label|thread|cap|syscall NAME, break SYMBOL, "
                             "or break *ADDR")
        kind, name = args
        if kind == "label":
            known = set(configured_labels(self.kernel.arch, self.kernel.config.mcs,
                                          self.kernel.config.checkpoint_object,
                                          self.kernel.config.cap_pages,
                                          traversal=self.kernel.config.server_backed_cnodes))
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

    # --- going back -------------------------------------------------------------------

    def take_snapshot(self, args: list[str]) -> None:
        if len(args) > 1:
            raise DebugError("usage: snapshot [FILE]")
        try:
            taken = self.machine.checkpoint()
        except CapsuleError as error:
            raise DebugError(str(error)) from None
        if args:
            try:
                size = save_snapshot(Path(args[0]), taken)
            except OSError as error:
                raise DebugError(f"cannot write {args[0]}: {error.strerror or error}") from None
            self.say(f"saved to {args[0]} ({size} bytes)")
        self.snapshots.append(taken)
        self.say(f"snapshot {len(self.snapshots)}: {_describe(taken)}")

    def list_snapshots(self) -> None:
        if not self.snapshots:
            self.say("no snapshots (snapshot takes one)")
        for number, taken in enumerate(self.snapshots, 1):
            self.say(f"{number}: {_describe(taken)}")

    def restore(self, args: list[str]) -> None:
        if len(args) > 1:
            raise DebugError("usage: restore [N | FILE]")
        if not args:
            if not self.snapshots:
                raise DebugError("no snapshots to go back to (snapshot takes one)")
            chosen, name = self.snapshots[-1], f"snapshot {len(self.snapshots)}"
        elif args[0].isdigit():
            number = int(args[0])
            if not 1 <= number <= len(self.snapshots):
                raise DebugError(f"no snapshot {number} (snapshots lists them)")
            chosen, name = self.snapshots[number - 1], f"snapshot {number}"
        else:
            try:
                chosen = load_snapshot(Path(args[0]))
            except SnapshotError as error:
                raise DebugError(str(error)) from None
            name = args[0]
        try:
            machine = Machine.restore(chosen, console=self.machine.console)
        except LoadError as error:
            raise DebugError(f"{name}: {error}") from None
        if chosen.elf and chosen.elf != self.machine.elf:
            self.symbols = _read_symbols(chosen.elf)
        self._use(machine)
        self.result = self._ending = self.interrupted = self.selected = None
        self._next.clear()
        self._cs = None
        if self.on_machine is not None:
            self.on_machine(machine)
        self.say(f"restored {name}: {_describe(chosen)}")

    # --- threads ------------------------------------------------------------------------

    def _thread(self, current: bool = False) -> TCB:
        """The selected thread (``current``: the one on the machine)."""
        chosen = None if current else self.selected
        if chosen is not None and self.kernel.threads.get(chosen.paddr) is chosen:
            return chosen
        if self.kernel.current is None:
            raise DebugError("no current thread")
        return self.kernel.current

    def threads(self) -> None:
        try:
            selected: TCB | None = self._thread()
        except DebugError:
            selected = None
        for number, tcb in self.target.threads():
            mark = "*" if tcb is selected else " "
            pc = self.target.context(tcb)[0]
            note = " (current)" if tcb is self.kernel.current else ""
            if isinstance(tcb.fault, IndexRequest):
                # capsule's server-backed CNodes (not seL4): a suspended lookup.
                note += f" (suspended lookup: {tcb.fault.describe()})"
            if self.kernel.config.mcs:
                note += thread_note(thread_mcs(self.kernel, tcb))
            self.say(f"{mark} {number} {tcb.name} tcb={tcb.paddr:#x} state={tcb.state.value} "
                     f"priority={tcb.priority} pc={pc:#x}{self._where(pc, tcb)}{note}")

    def thread(self, args: list[str]) -> None:
        if len(args) > 1:
            raise DebugError("usage: thread [N | NAME]")
        numbered = self.target.threads()
        if args:
            spec = args[0]
            if spec.isdigit():
                found = [(n, t) for n, t in numbered if n == int(spec)]
                if not found:
                    raise DebugError(f"no thread {spec} (threads lists them)")
            else:
                found = [(n, t) for n, t in numbered if t.name == spec]
                if not found:
                    raise DebugError(f"no thread named {spec!r} (threads lists them)")
                if len(found) > 1:
                    listed = ", ".join(str(n) for n, _ in found)
                    raise DebugError(f"{len(found)} threads are named {spec!r}: {listed}; "
                                     "choose one by number")
            self.selected = found[0][1]
        tcb = self._thread()
        number = next(n for n, t in numbered if t is tcb)
        self.say(f"thread {number} {tcb.name} tcb={tcb.paddr:#x} state={tcb.state.value}")
        self.disas(["1"], at_pc=True)

    def regs(self) -> None:
        tcb = self._thread()
        self.say(f"thread {tcb.name}")
        for name, value in self.machine.registers(self._info(tcb)).items():
            where = self._where(value, tcb) if name in ("pc", "ra", "x30") else ""
            self.say(f"{name:<12} {value:#018x}{where}")

    def _info(self, tcb: TCB) -> ThreadInfo:
        """The API's name for ``tcb`` (by its TCB's address: names need not be unique)."""
        return next(info for info in self.machine.threads if info.tcb == tcb.paddr)

    # --- kernel state -------------------------------------------------------------------

    def cspace(self, show_all: bool) -> None:
        snap = self.machine.snapshot()
        if not show_all:
            report = self.machine.session.report
            snap = hide_boot_caps(snap, BootCaps.of(report.bootinfo, report.root_cnode))
        lines = to_text(snap).splitlines()
        heads = [i for i, line in enumerate(lines) if line.startswith("objects (")]
        hidden = hidden_line(snap)
        for line in lines[: heads[0]] if heads else lines:
            self.say(line)
        if hidden is not None:
            self.say(f"({hidden}: cspace all shows them)")

    def state(self, section: str) -> None:
        text = to_text(self.machine.snapshot())
        if section != "state":
            starts = {"objects": "objects (", "untyped": "untypeds (", "cdt": "derivation (",
                      "sched": "scheduling contexts ("}
            lines = text.splitlines()
            heads = [i for i, line in enumerate(lines) if line.startswith(tuple(starts.values()))]
            first = next(i for i in heads if lines[i].startswith(starts[section]))
            later = [i for i in heads if i > first]
            text = "\n".join(lines[first : later[0] if later else len(lines)]) + "\n"
        for line in text.rstrip("\n").splitlines():
            self.say(line)

    def sched(self) -> None:
        """MCS state: :func:`kernel.views.mcs.mcs_lines` of the kernel now."""
        if not self.kernel.config.mcs:
            raise DebugError("sched: not an MCS kernel (no scheduling contexts; "
                             "capsule image build --mcs makes one)")
        for line in mcs_lines(mcs_view(self.kernel)):
            self.say(line)

    # --- guest memory -----------------------------------------------------------------

    def _where(self, address: int, tcb: TCB | None = None) -> str:
        """`` <symbol+off>`` for an address of the root task's image ('' if none: in
        another address space, the root task's symbols do not apply)."""
        if tcb is not None and vspace_root_of(self.kernel, tcb)[0] != self._image_root:
            return ""
        name = self.symbols.describe(address)
        return "" if name is None else f" <{name}>"

    def _read(self, tcb: TCB, vaddr: int, size: int, partial: bool = False) -> bytes:
        """``size`` bytes of ``tcb``'s memory at ``vaddr`` (``partial``: fewer, up to the
        first unmapped page)."""
        try:
            return self.machine.read(vaddr, size, self._info(tcb))
        except MemoryAccessError as error:
            if not partial or error.address == vaddr:
                raise DebugError(f"address {error.address:#x} is not mapped") from None
            return self.machine.read(vaddr, error.address - vaddr, self._info(tcb))
        except CapsuleError as error:
            raise DebugError(str(error)) from None

    def _address(self, text: str) -> int:
        """A number, or a symbol of the root task with an optional ``+offset``."""
        symbol = _SYMBOL_EXPRESSION.fullmatch(text)
        if symbol is not None and not text[0].isdigit():
            base = self.symbols.address_of(symbol.group(1))
            if base is None:
                hint = "" if len(self.symbols) else " (the image's ELF has no symbols)"
                raise DebugError(f"address: {text!r} is not a number or a symbol{hint}")
            offset = parse_number(symbol.group(2), "offset") if symbol.group(2) else 0
            value = base + offset
        else:
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
        data = self._read(self._thread(), address, size)
        for offset in range(0, len(data), 16):
            row = data[offset : offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
            self.say(f"{address + offset:#018x}: {row.hex(' '):<47}  |{text}|")
        self._next["mem"] = (address + size, size)

    def disas(self, args: list[str], at_pc: bool = False) -> None:
        if len(args) > 2:
            raise DebugError("usage: disas [ADDR] [N]")
        tcb = self._thread()
        if at_pc:
            address, count = self.target.context(tcb)[0], parse_number(args[0], "count")
        else:
            address = self._address(args[0]) if args else self.target.context(tcb)[0]
            count = parse_number(args[1], "count") if len(args) > 1 else 8
        if not 1 <= count <= MAX_DISAS:
            raise DebugError(f"count must be 1..{MAX_DISAS}")
        code = self._read(tcb, address, 4 * count, partial=True)
        end = address
        for insn in self._capstone().disasm(code, address, count):
            self.say(self._insn_line(insn, tcb))
            end = insn.address + insn.size
        if end == address:
            raise DebugError(f"no instruction decodes at {address:#x}")
        if not at_pc:
            self._next["disas"] = (end, count)

    def _insn_line(self, insn: capstone.CsInsn, tcb: TCB) -> str:
        text = f"{insn.mnemonic} {insn.op_str}".rstrip()
        target = re.search(r"#(0x[0-9a-f]+)$", insn.op_str)  # AArch64 branch targets
        if target is not None and (insn.group(capstone.CS_GRP_JUMP)
                                   or insn.group(capstone.CS_GRP_CALL)):
            text += self._where(int(target.group(1), 16), tcb)
        return f"{insn.address:#018x}{self._where(insn.address, tcb)}: {insn.bytes.hex():<8}  {text}"

    def _decode(self, tcb: TCB, pc: int) -> capstone.CsInsn | None:
        try:
            code = self.machine.read(pc, 4, self._info(tcb))
        except CapsuleError:
            return None
        return next(self._capstone().disasm(code, pc, 1), None)

    def _capstone(self) -> capstone.Cs:
        if self._cs is None:
            if self.kernel.arch is Arch.RISCV64:
                mode = capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC
                self._cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode)
            else:
                self._cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
            self._cs.detail = True  # instruction groups: calls and jumps
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
        try:
            import keystone  # optional: the dev extra installs it
        except (ImportError, OSError):
            raise DebugError("assembling needs keystone-engine (pip install keystone-engine); "
                             "or give the encoding as hex:BYTES (hex:1f2003d5 is nop)") from None
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
        tcb = self._thread()
        old = self._read(tcb, address, len(code))  # every byte mapped, before any write
        self.machine.write(address, code, self._info(tcb))  # drops translated code too
        self.say(f"patched {address:#x}: {old.hex()} -> {code.hex()}")
        self.disas([f"{address:#x}", "1"])
