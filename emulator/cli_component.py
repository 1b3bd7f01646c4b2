"""``capsule component IMAGE --thread NAME``: one thread's component, captured slot for slot.

Runs IMAGE (guest output is discarded) to a point and captures the thread's component
with :func:`kernel.component.capture`: its CSpace, the objects it owns (with their
identities, frame bytes, thread registers and states) and the derivation links among its
caps. Written as capsule's own format (``--format json``, what
:meth:`capsule.Machine.restore_component` takes back) or as capDL text
(``--format capdl``: objects, caps and cdt sections), on stdout or to ``-o FILE``.

Where the run stops: at its end, right after the Nth system call (``--after-syscall N``,
counted as ``capsule cspace`` counts them), or the Kth time an instruction at a symbol of
the root task's ELF is about to run (``--at SYMBOL [--hit K]``, a breakpoint).

``--external NAME=[THREAD:]CPTR`` (repeatable) names an object outside the component: the
one the cap at CPTR in THREAD's CSpace (default: the root task's) names. A capture that
cannot be faithful (an object shared with a cap outside the component and not named
external, a thread in the middle of a Call, ...) is refused: one line ``capsule: ...``
and exit status 2, as for every mistake a user can make (``emulator.cli_errors``).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from bootimage import ImageError
from bootimage.errors import ElfError
from bootimage.foreign import load_runnable
from bootimage.load import read_file
from bootimage.symbols import read_symbols
from kernel.boot import BootError
from kernel.component import ComponentError, capture, to_capdl, to_json
from kernel.cspace.lookup import lookup_slot
from kernel.kernel import Kernel
from kernel.model.errors import KernelBug
from kernel.model.slot import Slot
from kernel.model.tcb import TCB

from .cli_cspace import _parse_count, _Paused, _SyscallCounter
from .cli_errors import CliError, Command, InternalError
from .machine import MachineError
from .session import Session

__all__ = ["component"]

_EXTERNAL = re.compile(r"([A-Za-z_]\w*)=(?:(.+):)?(0[xX][0-9a-fA-F]+|\d+)")


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


def _externals(kernel: Kernel, specs: tuple[str, ...]) -> dict[str, Slot]:
    out: dict[str, Slot] = {}
    root = next(iter(kernel.threads.values()))
    for spec in specs:
        match = _EXTERNAL.fullmatch(spec)
        if match is None:
            raise CliError(f"--external {spec!r}: expected NAME=[THREAD:]CPTR, such as "
                           "server_ep=rootserver:0x20")
        name, thread, cptr_text = match.groups()
        tcb = root if thread is None else _thread(kernel, thread, "--external")
        cptr = int(cptr_text, 0)
        slot = lookup_slot(kernel, tcb, cptr)
        if not isinstance(slot, Slot) or slot.is_empty:
            raise CliError(f"--external {name}: cptr {cptr:#x} names no cap in thread "
                           f"{tcb.name!r}'s CSpace")
        out[name] = slot
    return out


def _run_to_symbol(session: Session, elf: bytes, symbol: str, hits: int,
                   max_instructions: int | None) -> str:
    try:
        address = read_symbols(elf).address_of(symbol)
    except ElfError as error:
        raise CliError(f"--at: cannot read the ELF's symbols: {error}") from None
    if address is None:
        raise CliError(f"--at: no symbol {symbol!r} in the root task's ELF")
    session.machine.add_breakpoint(address)
    seen = 0
    while True:
        result = session.run(max_instructions)
        if result.kind != "pause" or result.breakpoint != address:
            raise CliError(f"--at {symbol}: the run ended ({result.message}) after "
                           f"{seen} of {hits} hits")
        seen += 1
        if seen == hits:
            return f"at {symbol} (hit {hits})"


@click.command(cls=Command)
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--thread", "thread", metavar="NAME", required=True,
              help="The component's thread: NAME, NAME#N (the Nth of that name) or 0xTCB.")
@click.option("--after-syscall", "after", metavar="N", default=None,
              help="Capture right after the Nth system call (default: the end of the run).")
@click.option("--at", "at_symbol", metavar="SYMBOL", default=None,
              help="Capture when an instruction at SYMBOL of the root task is about to run.")
@click.option("--hit", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --at: the Kth time.")
@click.option("--external", "externals", metavar="NAME=[THREAD:]CPTR", multiple=True,
              help="An object outside the component: the one the cap at CPTR in THREAD's "
                   "CSpace (default: the root task's) names. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["json", "capdl"]), default="json",
              show_default=True, help="capsule's own format (restorable) or capDL text.")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Write to FILE instead of stdout.")
@click.option("--max-instructions", type=click.IntRange(min=1), default=None,
              help="Stop the run after this many guest instructions.")
def component(image_path: Path, thread: str, after: str | None, at_symbol: str | None,
              hit: int, externals: tuple[str, ...], fmt: str, output: Path | None,
              max_instructions: int | None) -> None:
    """Capture one thread's component of IMAGE's run: its CSpace slot for slot, the
    objects it owns and the derivation links among its caps."""
    stop_at = _parse_count(after)
    if stop_at is not None and at_symbol is not None:
        raise CliError("--after-syscall and --at choose the same thing: give one")
    try:
        loaded = load_runnable(read_file(image_path, "image"))
    except ImageError as error:
        raise CliError(str(error)) from None
    try:
        session = Session.boot(loaded.root, loaded.config, lambda byte: None)
    except BootError as error:
        raise CliError(f"cannot boot {image_path}: {error}") from None
    counter = _SyscallCounter(session.kernel, stop_at)
    try:
        if at_symbol is not None:
            _run_to_symbol(session, loaded.elf, at_symbol, hit, max_instructions)
        else:
            result = session.run(max_instructions)
            if stop_at is not None:
                raise CliError(f"--after-syscall {stop_at}: the run ended ({result.message}) "
                               f"after {counter.count} syscalls")
    except _Paused:
        pass
    except (KernelBug, MachineError) as error:
        raise InternalError(f"internal error: {type(error).__name__}: {error}") from None
    kernel = session.kernel
    tcb = _thread(kernel, thread, "--thread")
    try:
        captured = capture(kernel, tcb, _externals(kernel, externals))
    except ComponentError as error:
        raise CliError(f"cannot capture the component of thread {tcb.name!r}: {error}") from None
    text = to_json(captured) if fmt == "json" else to_capdl(captured)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror or error}") from None
