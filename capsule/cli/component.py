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
the end of the run. Like the other commands, this one works through the Python API
(:meth:`capsule.Machine.capture_component`, :meth:`capsule.Machine.restore_component`,
stop conditions and hooks). A capture or restore that cannot be faithful (an object shared with
a cap outside the component and not named external, a thread in the middle of a Call,
an untyped too small, ...) is refused: one line ``capsule: ...`` and exit status 2, as
for every mistake a user can make (``capsule.cli.errors``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from capsule.component import CapRef
from capsule.conditions import AtAddress
from capsule.errors import (
    CapLookupError,
    ComponentError,
    InternalError,
    LoadError,
    MemoryAccessError,
    NoSuchSymbol,
)
from capsule.machine import Machine
from capsule.records import StopKind, SyscallEvent, ThreadInfo
from emulator.exitstatus import ExitStatus
from kernel.component import ComponentError as FileError
from kernel.component import from_json, to_capdl, to_json

from .cspace import parse_syscall_count
from .errors import CliError, Command
from .errors import InternalError as CliCrash
from .run import internal_error

__all__ = ["component"]

_CAP = re.compile(r"(?:(.+):)?(0[xX][0-9a-fA-F]+|\d+)")


def _thread(machine: Machine, spec: str, option: str) -> ThreadInfo:
    """``spec``: a thread's name (unique), ``NAME#N`` (the Nth of that name, in creation
    order) or its TCB's address ``0x...``."""
    threads = machine.threads
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", spec):
        for info in threads:
            if info.tcb == int(spec, 16):
                return info
        raise CliError(f"{option}: no thread has its TCB at {spec}")
    numbered = re.fullmatch(r"(.*)#(\d+)", spec)
    name, number = (numbered.group(1), int(numbered.group(2))) if numbered else (spec, 0)
    named = [t for t in threads if t.name == name]
    if numbered and 1 <= number <= len(named):
        return named[number - 1]
    if not numbered and len(named) == 1:
        return named[0]
    if len(named) > 1 and not numbered:
        listing = ", ".join(f"{name}#{i} (tcb {t.tcb:#x})" for i, t in enumerate(named, 1))
        raise CliError(f"{option}: {len(named)} threads are named {name!r}: {listing}")
    raise CliError(f"{option}: no thread {spec!r} (threads: "
                   f"{', '.join(t.name for t in threads) or 'none'})")


def _cap(machine: Machine, spec: str, option: str) -> CapRef:
    """``[THREAD:]CPTR``: a cap of THREAD's CSpace (default: the root task's)."""
    match = _CAP.fullmatch(spec)
    if match is None:
        raise CliError(f"{option} {spec!r}: expected [THREAD:]CPTR, such as rootserver:0x20")
    thread, cptr_text = match.groups()
    info = machine.threads[0] if thread is None else _thread(machine, thread, option)
    cptr = int(cptr_text, 0)
    try:
        found = machine.cap(cptr, info)
    except CapLookupError as error:
        raise CliError(f"{option} {spec}: {error}") from None
    if found is None:
        raise CliError(f"{option} {spec}: cptr {cptr:#x} names no cap in thread "
                       f"{info.name!r}'s CSpace")
    return (info, cptr)


def _named_caps(machine: Machine, specs: tuple[str, ...], option: str) -> dict[str, CapRef]:
    """``NAME=[THREAD:]CPTR`` each: the identity map's entries."""
    out: dict[str, CapRef] = {}
    for spec in specs:
        name, equals, cap = spec.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise CliError(f"{option} {spec!r}: expected NAME=[THREAD:]CPTR, such as "
                           "server_ep=rootserver:0x20")
        out[name] = _cap(machine, cap, f"{option} {name}:")
    return out


def _run_to(machine: Machine, after: int | None, symbol: str | None, hits: int,
            max_instructions: int | None) -> None:
    """Run to the point: the end of the run, right after the ``after``th system call, or
    the ``hits``th time an instruction at ``symbol`` is about to run."""
    if symbol is not None:
        try:
            where = AtAddress(machine.symbol(symbol))
        except NoSuchSymbol as error:
            raise CliError(f"--at: {error}") from None
        for seen in range(hits):
            stop = machine.run(until=where, max_instructions=max_instructions)
            if stop.kind is not StopKind.CONDITION:
                raise CliError(f"--at {symbol}: the run ended ({stop.message}) after {seen} "
                               f"of {hits} hits")
        return
    syscalls = 0

    def count(event: SyscallEvent) -> bool:
        nonlocal syscalls
        syscalls += 1
        return syscalls == after

    hook = machine.on_syscall(count) if after is not None else None
    stop = machine.run(max_instructions=max_instructions)
    if hook is not None:
        hook.remove()
        if stop.kind is not StopKind.HOOK:
            raise CliError(f"--after-syscall {after}: the run ended ({stop.message}) after "
                           f"{syscalls} syscalls")


def _poke(machine: Machine, spec: str) -> None:
    """``--set SYMBOL=VALUE``: write the 64-bit word VALUE at SYMBOL of the root task."""
    match = re.fullmatch(r"(\w+)=(0[xX][0-9a-fA-F]+|\d+)", spec)
    value = int(match.group(2), 0) if match else -1
    if match is None or not 0 <= value < 1 << 64:
        raise CliError(f"--set {spec!r}: expected SYMBOL=VALUE (a 64-bit word), such as ready=1")
    try:
        machine.write(machine.symbol(match.group(1)), value.to_bytes(8, "little"),
                      machine.threads[0])
    except (NoSuchSymbol, MemoryAccessError) as error:
        raise CliError(f"--set {spec}: {error}") from None


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
    stop_at = parse_syscall_count(after)
    if stop_at is not None and at_symbol is not None:
        raise CliError("--after-syscall and --at choose the same thing: give one")
    if restore_from is None and thread is None:
        raise CliError("--thread: say whose component to capture (or --restore FILE)")
    if restore_from is not None and (untyped is None or thread is not None):
        raise CliError("--restore takes --untyped (where to make the objects), not --thread")
    if restore_from is not None and stop_at is None and at_symbol is None:
        raise CliError("--restore needs a point to restore at: --at SYMBOL or --after-syscall N")
    saved = None
    if restore_from is not None:
        try:
            saved = from_json(restore_from.read_text())
        except OSError as error:
            raise CliError(f"cannot read {restore_from}: {error.strerror or error}") from None
        except FileError as error:
            raise CliError(f"{restore_from}: {error}") from None
    try:
        machine = Machine.load(image_path)
    except LoadError as error:
        raise CliError(str(error)) from None
    try:
        _run_to(machine, stop_at, at_symbol, hit, max_instructions)
        if saved is not None:
            assert untyped is not None
            try:
                machine.restore_component(
                    saved, untyped=_cap(machine, untyped, "--untyped"),
                    identities=_named_caps(machine, identities, "--identity"),
                    asid_pool=None if asid_pool is None else _cap(machine, asid_pool,
                                                                   "--asid-pool"))
            except ComponentError as error:
                raise CliError(f"cannot restore the component: {error}") from None
            for spec in pokes:
                _poke(machine, spec)
            stop = machine.run(max_instructions=max_instructions)
            sys.stdout.buffer.write(machine.output)
            sys.stdout.flush()
            if stop.kind is not StopKind.HALT or stop.status == ExitStatus.GUEST_RESERVED:
                click.echo(f"capsule: {stop.message}", err=True)
            sys.exit(stop.status)
        assert thread is not None
        info = _thread(machine, thread, "--thread")
        try:
            captured = machine.capture_component(
                info, external=_named_caps(machine, externals, "--external"))
        except ComponentError as error:
            raise CliError(f"cannot capture the component of thread {info.name!r}: "
                           f"{error}") from None
    except InternalError as error:
        raise CliCrash(internal_error(error)) from None
    text = to_json(captured) if fmt == "json" else to_capdl(captured)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror or error}") from None
