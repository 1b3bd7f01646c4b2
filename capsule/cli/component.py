"""``capsule component IMAGE``: one thread's component, captured slot for slot, or restored.

Capture (``--thread NAME``): runs IMAGE (guest output is discarded) to a point and
captures the thread's component with :func:`kernel.component.capture`: its CSpace, the
objects it owns (identities, frame bytes, thread registers and states) and the
derivation links among its caps. Written in capsule's own format (``--format json``,
which ``--restore`` and :meth:`capsule.Machine.restore_component` take back) or as capDL
text (``--format capdl``: objects, caps and cdt sections), on stdout or to ``-o FILE``.
``--external NAME=[THREAD:]CPTR`` (repeatable) names an object outside the component:
the one the cap at CPTR in THREAD's CSpace (default: the root task's) names.

Restore (``--restore FILE --untyped [THREAD:]CPTR``): runs IMAGE to the point, restores
the component FILE holds into fresh objects retyped from that untyped
(:func:`kernel.component.restore`), each external name mapped to an existing object by
``--identity NAME=[THREAD:]CPTR``, an own VSpace given ASIDs from ``--asid-pool``;
writes the words ``--set SYMBOL=VALUE`` gives into the root task (how a guest learns it
happened), and runs on to the end: the guest's output on stdout, its exit status, as
``capsule run``.

The point: right after the Nth system call (``--after-syscall N``, counted as ``capsule
cspace`` counts them), or the Kth time an instruction at a symbol of the root task's ELF
is about to run (``--at SYMBOL [--hit K]``, a breakpoint); a capture without one is at
the end of the run. A capture or restore that cannot be faithful (an object shared with
a cap outside the component and not named external, a thread in the middle of a Call,
an untyped too small, ...) is refused: one line ``capsule: ...`` and exit status 2, as
for every mistake a user can make (``capsule.cli.errors``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from bootimage import ImageError
from bootimage.errors import ElfError
from bootimage.foreign import load_runnable
from bootimage.load import read_file
from bootimage.symbols import read_symbols
from emulator.exitstatus import exit_status, stop_line
from emulator.machine import MachineError
from emulator.session import Session
from kernel.boot import BootError
from kernel.component import ComponentError, capture, from_json, restore, to_capdl, to_json
from kernel.core.threads import vspace_root_of
from kernel.cspace.lookup import lookup_slot
from kernel.kernel import Kernel
from kernel.model.errors import KernelBug
from kernel.model.page_tables import translate
from kernel.model.paging import Access
from kernel.model.slot import Slot
from kernel.model.tcb import TCB

from .errors import CliError, Command, InternalError

__all__ = ["component"]

def _thread(kernel: Kernel, spec: str, option: str) -> TCB:
    """``spec``: a thread's name (unique), ``NAME#N`` (the Nth of that name, in creation
    order) or its TCB's address ``0x...``."""
    threads = list(kernel.threads.values())
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", spec):
        found = kernel.threads.get(int(spec, 16))
        if found is None:
            raise CliError(f"{option}: no thread has its TCB at {spec}")
        return found
    numbered = re.fullmatch(r"(.*)#(\d+)", spec)
    name, number = (numbered.group(1), int(numbered.group(2))) if numbered else (spec, 0)
    named = [t for t in threads if t.name == name]
    if numbered and 1 <= number <= len(named):
        return named[number - 1]
    if not numbered and len(named) == 1:
        return named[0]
    if len(named) > 1 and not numbered:
        listing = ", ".join(f"{name}#{i} (tcb {t.paddr:#x})" for i, t in enumerate(named, 1))
        raise CliError(f"{option}: {len(named)} threads are named {name!r}: {listing}")
    raise CliError(f"{option}: no thread {spec!r} (threads: "
                   f"{', '.join(t.name for t in threads) or 'none'})")


_CAP = re.compile(r"(?:(.+):)?(0[xX][0-9a-fA-F]+|\d+)")


def _cap_slot(kernel: Kernel, spec: str, option: str) -> Slot:
    """``[THREAD:]CPTR``: the slot CPTR names in THREAD's CSpace (default: the root task's)."""
    match = _CAP.fullmatch(spec)
    if match is None:
        raise CliError(f"{option} {spec!r}: expected [THREAD:]CPTR, such as rootserver:0x20")
    thread, cptr_text = match.groups()
    tcb = next(iter(kernel.threads.values())) if thread is None else _thread(kernel, thread, option)
    cptr = int(cptr_text, 0)
    slot = lookup_slot(kernel, tcb, cptr)
    if not isinstance(slot, Slot) or slot.is_empty:
        raise CliError(f"{option} {spec}: cptr {cptr:#x} names no cap in thread {tcb.name!r}'s "
                       "CSpace")
    return slot


def _named_caps(kernel: Kernel, specs: tuple[str, ...], option: str) -> dict[str, Slot]:
    """``NAME=[THREAD:]CPTR`` each: the identity map's entries."""
    out: dict[str, Slot] = {}
    for spec in specs:
        name, equals, cap = spec.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise CliError(f"{option} {spec!r}: expected NAME=[THREAD:]CPTR, such as "
                           "server_ep=rootserver:0x20")
        out[name] = _cap_slot(kernel, cap, f"{option} {name}:")
    return out


class _Point:
    """Where the run stops: after the Nth syscall, at the Kth hit of a symbol, or (no
    point) at the end of the run. Pauses the machine there (``request_pause``), so the
    run can go on afterwards."""

    def __init__(self, session: Session, elf: bytes, after: str | None, symbol: str | None,
                 hits: int) -> None:
        self.session = session
        self.after = _count(after)
        if self.after is not None and symbol is not None:
            raise CliError("--after-syscall and --at choose the same thing: give one")
        self.symbol, self.hits = symbol, hits
        self.address: int | None = None
        if symbol is not None:
            try:
                self.address = read_symbols(elf).address_of(symbol)
            except ElfError as error:
                raise CliError(f"--at: cannot read the ELF's symbols: {error}") from None
            if self.address is None:
                raise CliError(f"--at: no symbol {symbol!r} in the root task's ELF")
        self.syscalls = 0
        self._in_syscall = False
        session.kernel.syscall_observers.append(self._on_syscall)
        session.kernel.exit_observers.append(self._on_exit)

    def _on_syscall(self, kernel: Kernel, window: list[int]) -> None:
        self.syscalls += 1
        self._in_syscall = True

    def _on_exit(self, kernel: Kernel) -> None:
        was_syscall, self._in_syscall = self._in_syscall, False
        if was_syscall and self.syscalls == self.after:
            self.session.machine.request_pause("--after-syscall")

    @property
    def given(self) -> bool:
        return self.after is not None or self.symbol is not None

    def run_to(self, max_instructions: int | None) -> None:
        """Run until the point (the end of the run if there is none)."""
        machine = self.session.machine
        if self.address is not None:
            machine.add_breakpoint(self.address)
        seen = 0
        try:
            while True:
                result = self.session.run(max_instructions)
                if result.kind != "pause":
                    break
                if self.address is None or result.breakpoint == self.address:
                    seen += 1
                    if self.address is None or seen == self.hits:
                        return
        finally:
            if self.address is not None:
                machine.remove_breakpoint(self.address)
        if self.after is not None:
            raise CliError(f"--after-syscall {self.after}: the run ended ({result.message}) "
                           f"after {self.syscalls} syscalls")
        if self.symbol is not None:
            raise CliError(f"--at {self.symbol}: the run ended ({result.message}) after "
                           f"{seen} of {self.hits} hits")


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 0)
    except ValueError:
        raise CliError(f"--after-syscall: {text!r} is not a number") from None
    if value < 1:
        raise CliError(f"--after-syscall: {value} is not a syscall number (counting starts at 1)")
    return value


def _poke(session: Session, elf: bytes, spec: str) -> None:
    """``--set SYMBOL=VALUE``: write the 64-bit word VALUE at SYMBOL of the root task."""
    match = re.fullmatch(r"(\w+)=(0[xX][0-9a-fA-F]+|\d+)", spec)
    if match is None:
        raise CliError(f"--set {spec!r}: expected SYMBOL=VALUE, such as ready=1")
    address = read_symbols(elf).address_of(match.group(1))
    if address is None:
        raise CliError(f"--set: no symbol {match.group(1)!r} in the root task's ELF")
    kernel = session.kernel
    root_task = next(iter(kernel.threads.values()))
    root, _ = vspace_root_of(kernel, root_task)
    paddr = translate(kernel.machine, kernel.paging, root, address, Access.WRITE)
    value = int(match.group(2), 0)
    if paddr is None or address % 8 or not 0 <= value < 1 << 64:
        raise CliError(f"--set {spec}: not a writable, aligned word of the root task or "
                       "not a 64-bit value")
    kernel.machine.write_phys(paddr, value.to_bytes(8, "little"))


@click.command(cls=Command)
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--thread", "thread", metavar="NAME", default=None,
              help="The component's thread: NAME, NAME#N (the Nth of that name) or 0xTCB.")
@click.option("--after-syscall", "after", metavar="N", default=None,
              help="Stop right after the Nth system call (default: the end of the run).")
@click.option("--at", "at_symbol", metavar="SYMBOL", default=None,
              help="Stop when an instruction at SYMBOL of the root task is about to run.")
@click.option("--hit", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --at: the Kth time.")
@click.option("--external", "externals", metavar="NAME=[THREAD:]CPTR", multiple=True,
              help="An object outside the component: the one the cap at CPTR in THREAD's "
                   "CSpace (default: the root task's) names. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["json", "capdl"]), default="json",
              show_default=True, help="capsule's own format (restorable) or capDL text.")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Write to FILE instead of stdout.")
@click.option("--restore", "restore_from", metavar="FILE", type=click.Path(path_type=Path),
              default=None, help="Instead of capturing: restore the component FILE holds "
                                 "at the point, then run on to the end.")
@click.option("--untyped", "untyped", metavar="[THREAD:]CPTR", default=None,
              help="With --restore: the untyped cap to make the objects from.")
@click.option("--asid-pool", "asid_pool", metavar="[THREAD:]CPTR", default=None,
              help="With --restore: an ASID pool cap, for a component with its own VSpace.")
@click.option("--identity", "identities", metavar="NAME=[THREAD:]CPTR", multiple=True,
              help="With --restore: the existing object an external NAME of the component "
                   "is (the one the cap at CPTR names). Repeatable.")
@click.option("--set", "pokes", metavar="SYMBOL=VALUE", multiple=True,
              help="With --restore: once restored, write this 64-bit word at SYMBOL of the "
                   "root task (tell the guest). Repeatable.")
@click.option("--max-instructions", type=click.IntRange(min=1), default=None,
              help="Stop the run after this many guest instructions.")
def component(image_path: Path, thread: str | None, after: str | None, at_symbol: str | None,
              hit: int, externals: tuple[str, ...], fmt: str, output: Path | None,
              restore_from: Path | None, untyped: str | None, asid_pool: str | None,
              identities: tuple[str, ...], pokes: tuple[str, ...],
              max_instructions: int | None) -> None:
    """Capture one thread's component of IMAGE's run (its CSpace slot for slot, the
    objects it owns, the derivation links among its caps), or restore one (--restore)."""
    if restore_from is None and thread is None:
        raise CliError("--thread: say whose component to capture (or --restore FILE)")
    if restore_from is not None and (untyped is None or thread is not None):
        raise CliError("--restore takes --untyped (where to make the objects), not --thread")
    text = None
    if restore_from is not None:
        try:
            text = restore_from.read_text()
        except OSError as error:
            raise CliError(f"cannot read {restore_from}: {error.strerror or error}") from None
    try:
        loaded = load_runnable(read_file(image_path, "image"))
    except ImageError as error:
        raise CliError(str(error)) from None
    out = bytearray()
    try:
        session = Session.boot(loaded.root, loaded.config, out.append)
    except BootError as error:
        raise CliError(f"cannot boot {image_path}: {error}") from None
    point = _Point(session, loaded.elf, after, at_symbol, hit)
    if text is not None and not point.given:
        raise CliError("--restore needs a point to restore at: --at SYMBOL or --after-syscall N")
    try:
        point.run_to(max_instructions)
    except (KernelBug, MachineError) as error:
        raise InternalError(f"internal error: {type(error).__name__}: {error}") from None
    kernel = session.kernel
    if text is not None:
        assert untyped is not None
        _restore(session, loaded.elf, text, untyped, asid_pool, identities, pokes,
                 max_instructions, out)
        return
    assert thread is not None
    tcb = _thread(kernel, thread, "--thread")
    try:
        captured = capture(kernel, tcb, _named_caps(kernel, externals, "--external"))
    except ComponentError as error:
        raise CliError(f"cannot capture the component of thread {tcb.name!r}: {error}") from None
    result_text = to_json(captured) if fmt == "json" else to_capdl(captured)
    if output is None:
        click.echo(result_text, nl=False)
        return
    try:
        output.write_text(result_text)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror or error}") from None


def _restore(session: Session, elf: bytes, text: str, untyped: str, asid_pool: str | None,
             identities: tuple[str, ...], pokes: tuple[str, ...],
             max_instructions: int | None, out: bytearray) -> None:
    """Restore the component ``text`` now, run on to the end, and exit as ``capsule run``
    does: the guest's output on stdout, its status (or capsule's with a line)."""
    kernel = session.kernel
    source = _cap_slot(kernel, untyped, "--untyped")
    pool = None if asid_pool is None else _cap_slot(kernel, asid_pool, "--asid-pool")
    named = _named_caps(kernel, identities, "--identity")
    try:
        restore(kernel, from_json(text), source, named, pool)
    except ComponentError as error:
        raise CliError(f"cannot restore the component: {error}") from None
    for spec in pokes:
        _poke(session, elf, spec)
    try:
        result = session.run(max_instructions)
    except (KernelBug, MachineError) as error:
        raise InternalError(f"internal error: {type(error).__name__}: {error}") from None
    sys.stdout.buffer.write(bytes(out))
    sys.stdout.flush()
    line = stop_line(result)
    if line is not None:
        click.echo(f"capsule: {line}", err=True)
    sys.exit(exit_status(result))
