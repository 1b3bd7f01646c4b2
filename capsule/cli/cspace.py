"""``capsule cspace IMAGE``: kernel objects, capabilities and derivation links of a run.

Runs IMAGE (guest output is discarded) and renders the kernel state with
:mod:`kernel.views.render`, either at the end of the run (halt, fault, idle, limit) or right
after the Nth kernel entry that is a system call (``--after-syscall N``).

What is shown (filters of :mod:`kernel.views.narrow`, applied in this order):

- ``--thread NAME``: that thread's CSpace only (its tree, its TCB's slots, the objects and
  links among them). Two threads of one name: ``NAME#N`` picks the Nth (creation order),
  ``0xADDRESS`` a TCB by address; a bare shared name is an error listing them.
- ``--subtree SLOT|OBJECT``: the derivation subtree of one slot (``0x80040000[66]``,
  ``0x81000400.ctable``: slot ids as the output writes them) or of every cap to the object
  at an address: those caps, their objects and links, and the CSpace paths to them.
- by default the caps boot made for the root task's own image (a frame cap per page, its
  page tables) and the untypeds nothing was retyped from are left out, and one line says
  how many; ``--all-caps`` shows them (``--subtree`` always shows its whole subtree).
- ``--hide TYPE[,TYPE...]`` (repeatable): leave out every cap of these types too.

How the run is paused: through the Python API, a :class:`capsule.Machine` with a syscall
hook that counts the system calls and asks to stop after the Nth; the API stops once that
kernel entry's effects are complete (scheduling included), so the state rendered is
exactly what the guest would see on return from that syscall.

Error contract (``capsule.cli.errors``): every failure a user can cause — a bad image,
a bad option, an N the run never reaches, an unknown thread — is one line
``capsule: <message>`` on stderr with exit status 2, never a traceback; a bug in capsule
is one line with status 125.
"""

from __future__ import annotations

from pathlib import Path

import click

from capsule.errors import InternalError, LoadError
from capsule.machine import Machine
from capsule.records import StopKind, SyscallEvent
from kernel.abi.constants import CapTag
from kernel.views.narrow import (
    BootCaps,
    ChoiceError,
    choose_thread,
    hide_boot_caps,
    hide_types,
    only_subtree,
    only_thread,
)
from kernel.views.render import Snapshot, to_dot, to_json_text, to_text

from .errors import CliError, Command
from .errors import InternalError as CliCrash
from .run import internal_error

__all__ = ["cspace"]

def parse_syscall_count(text: str | None) -> int | None:
    """``--after-syscall N``: N counted from 1 (None: not given)."""
    if text is None:
        return None
    try:
        value = int(text, 0)
    except ValueError:
        raise CliError(f"--after-syscall: {text!r} is not a number") from None
    if value < 1:
        raise CliError(f"--after-syscall: {value} is not a syscall number (counting starts at 1)")
    return value


_CAP_TYPES = [tag.name.removesuffix("_cap") for tag in CapTag if tag is not CapTag.null_cap]


def _parse_types(values: tuple[str, ...]) -> set[str]:
    types = {t.strip().removesuffix("_cap") for value in values for t in value.split(",") if t.strip()}
    unknown = sorted(types - set(_CAP_TYPES))
    if unknown:
        raise CliError(f"--hide: no cap type {', '.join(unknown)} (types: {', '.join(_CAP_TYPES)})")
    return types


def _narrow(snap: Snapshot, boot: BootCaps, thread: str | None, subtree: str | None,
            all_caps: bool, hidden_types: set[str]) -> Snapshot:
    """The filters of the module docstring, in its order."""
    try:
        if thread is not None:
            snap = only_thread(snap, choose_thread(snap, thread))
        if subtree is not None:
            snap = only_subtree(snap, subtree)
    except ChoiceError as error:
        option = "--thread" if thread is not None and subtree is None else "--subtree"
        if thread is not None and subtree is not None:
            option = "--thread/--subtree"
        raise CliError(f"{option}: {error}") from None
    if not all_caps and subtree is None:
        snap = hide_boot_caps(snap, boot)
    if hidden_types:
        snap = hide_types(snap, hidden_types)
    return snap


@click.command(cls=Command)
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--after-syscall", "after", metavar="N", default=None,
              help="Stop right after the Nth system call (default: the end of the run).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot"]), default="text",
              show_default=True, help="Output form (dot: Graphviz, derivation links as edges).")
@click.option("--thread", "thread", metavar="NAME", default=None,
              help="Show only this thread's CSpace. NAME#N: the Nth thread of that name; "
                   "0xADDRESS: the thread whose TCB is there.")
@click.option("--subtree", metavar="SLOT|OBJECT", default=None,
              help="Show only the derivation subtree of this slot (0xCNODE[INDEX], "
                   "0xTCB.ctable) or of every cap to the object at 0xADDRESS.")
@click.option("--all-caps", is_flag=True,
              help="Also show the root task's image frame and page-table caps and the "
                   "untypeds nothing was retyped from (hidden by default).")
@click.option("--hide", "hide", metavar="TYPE[,TYPE...]", multiple=True,
              help="Leave out every cap of these types (frame, untyped, endpoint, ...); "
                   "repeatable.")
@click.option("--all-slots", is_flag=True, help="Show empty slots in CSpace trees too.")
@click.option("--max-instructions", type=click.IntRange(min=1), default=None,
              help="Stop the run after this many guest instructions.")
def cspace(image_path: Path, after: str | None, fmt: str, thread: str | None,
           subtree: str | None, all_caps: bool, hide: tuple[str, ...], all_slots: bool,
           max_instructions: int | None) -> None:
    """Show kernel objects, each thread's CSpace and the derivation tree of IMAGE's run.

    By default the caps boot made for the root task's image and the untypeds nothing was
    retyped from are left out (one line counts them); --all-caps shows them.
    """
    stop_at = parse_syscall_count(after)
    hidden_types = _parse_types(hide)
    try:
        machine = Machine.load(image_path)
    except LoadError as error:
        raise CliError(str(error)) from None
    syscalls = 0

    def count(event: SyscallEvent) -> bool:
        nonlocal syscalls
        syscalls += 1
        return syscalls == stop_at

    machine.on_syscall(count)
    try:
        stop = machine.run(max_instructions=max_instructions)
    except InternalError as error:
        raise CliCrash(internal_error(error)) from None
    if stop.kind is StopKind.HOOK:
        point = f"after syscall {stop_at} (kernel entry {machine.kernel_entries})"
    elif stop_at is not None:
        raise CliError(f"--after-syscall {stop_at}: the run ended ({stop.message}) "
                       f"after {syscalls} syscalls")
    else:
        point = f"end of run ({stop.kind.value}): {stop.message}, {syscalls} syscalls"
    report = machine.session.report
    snap = _narrow(machine.snapshot(point=point, empty_slots=all_slots),
                   BootCaps.of(report.bootinfo, report.root_cnode), thread, subtree,
                   all_caps, hidden_types)
    if fmt == "json":
        click.echo(to_json_text(snap))
    elif fmt == "dot":
        click.echo(to_dot(snap), nl=False)
    else:
        click.echo(to_text(snap), nl=False)
