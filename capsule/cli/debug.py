"""``capsule debug IMAGE [--script FILE]``: a syscall-level debugger (see capsule.cli.debugger).

Commands come from ``--script FILE``, else from stdin. When stdin is a terminal there
is a prompt with line editing and history (Python's ``readline``: the arrow keys recall
earlier commands, Tab completes command names); the history is kept across sessions in
``$XDG_STATE_HOME/capsule/debug_history`` (``~/.local/state/...``) when that file can be
written. There, an empty line repeats the last ``step``, ``stepi``, ``nexti`` or
``continue`` and goes on after ``disas`` or ``mem``, as in gdb (a script's empty lines
do nothing). Addresses are named by the root task's ELF symbols, which the image
carries (:mod:`bootimage.symbols`). The run stops at the end of each syscall chosen by
``step`` or a breakpoint.
When the commands run out (without ``quit``) the run continues to its end, breakpoints
disabled. Everything goes to stdout: guest output is flushed before each debugger line
(ended with a newline if the guest left a line open, so debugger lines stay whole).

Ctrl-C (SIGINT, ``emulator.interrupt``) while the guest runs (``continue``, ``step``,
``stepi``) stops it where it is and shows the thread and the pc. At the prompt of an
interactive session the debugger then waits for the next command (as gdb does; Ctrl-C
at the prompt just gives a fresh prompt); with commands from a script or a pipe, the
session ends there with status 130, as ``capsule run`` does.

Exit status: as ``capsule run`` (``emulator.exitstatus``; 0 after ``quit`` before the
end). A bad IMAGE or an unreadable script is one line ``capsule: ...`` with status 2; a
bug in capsule, 125.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from bootimage import ImageError
from bootimage.symbols import SymbolTable, read_symbols
from capsule.errors import InternalError as CapsuleInternalError
from capsule.errors import LoadError
from capsule.machine import Machine
from emulator.exitstatus import ExitStatus
from emulator.interrupt import interrupts_stop
from emulator.machine import MachineError
from kernel.model.errors import KernelBug

from .debugger import HELP, Debugger
from .errors import CliError, Command, InternalError
from .kernel_log import attach_kernel_log, kernel_log_option
from .opening import open_machine
from .run import internal_error

try:
    import readline
except ImportError:  # a Python built without it: plain lines, no history
    readline = None  # type: ignore[assignment]

__all__ = ["debug"]


class _Output:
    """Guest bytes and debugger lines, interleaved on stdout."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.open_line = False

    def guest(self, data: bytes) -> None:
        self.buffer += data
        if 0x0A in data:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            sys.stdout.flush()
            sys.stdout.buffer.write(self.buffer)
            sys.stdout.buffer.flush()
            self.open_line = self.buffer[-1] != 0x0A
            self.buffer.clear()

    def settle(self) -> None:
        """Flush guest output and end a line it left open (before a prompt)."""
        self.flush()
        if self.open_line:
            click.echo()
            self.open_line = False

    def say(self, line: str) -> None:
        self.flush()
        if self.open_line:
            line, self.open_line = "\n" + line, False
        click.echo(line)
        sys.stdout.flush()


PROMPT = "(capsule) "
HISTORY_LENGTH = 1000
COMMANDS = ("step", "stepi", "nexti", "continue", "break", "patch", "regs", "mem", "disas",
            "threads", "thread", "cspace", "objects", "cdt", "untyped", "sched", "state",
            "snapshot", "snapshots", "restore", "help", "quit")


def history_path() -> Path:
    """Where the debugger's history is kept: the user's state directory (XDG)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".local", "state")
    return Path(state) / "capsule" / "debug_history"


def _complete(text: str, state: int) -> str | None:
    matches = [c + " " for c in COMMANDS if c.startswith(text)]
    return matches[state] if state < len(matches) else None


def _interactive(before_prompt: Callable[[], None]) -> Iterator[str]:
    """Lines typed at the prompt, with readline's editing and history; an empty line is
    yielded as it is (the caller decides what it repeats). Ctrl-C at the prompt drops the
    line typed so far; end of input (Ctrl-D) ends."""
    saved = history_path()
    if readline is not None:
        readline.set_history_length(HISTORY_LENGTH)
        readline.set_completer(_complete)
        readline.parse_and_bind("tab: complete")
        try:
            readline.read_history_file(saved)
        except OSError:
            pass  # no history yet (or unreadable: start a new one)
    try:
        while True:
            before_prompt()
            try:
                line = input(PROMPT)
            except KeyboardInterrupt:
                click.echo()
                continue
            except EOFError:
                click.echo()
                return
            yield line
    finally:
        if readline is not None:
            try:
                saved.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(saved)
            except OSError:
                pass  # history is a convenience: a read-only home keeps none


def _commands(script: Path | None, before_prompt: Callable[[], None]) -> Iterator[str]:
    if script is not None:
        try:
            lines = script.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"cannot read script {script}: {error}") from None
        yield from lines
        return
    if sys.stdin.isatty():
        yield from _interactive(before_prompt)
        return
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        yield line


def _symbols(elf: bytes) -> SymbolTable:
    """The root task's symbols; a symbol table that cannot be read is one note, not an
    end (the debugger works on addresses without it)."""
    try:
        return read_symbols(elf)
    except ImageError as error:
        click.echo(f"capsule: no symbols: {error}", err=True)
        return SymbolTable([])


@click.command(cls=Command, epilog="\b\nCommands:\n" + HELP)
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--script", type=click.Path(path_type=Path), default=None,
              help="Read debugger commands from FILE (default: stdin).")
@kernel_log_option
def debug(image_path: Path, script: Path | None, kernel_log: bool) -> None:
    """Debug IMAGE at system-call level: step (to the end of the next syscall), break, inspect.

    IMAGE may also be a snapshot file (capsule run --snapshot-at N --save FILE, or the
    debugger's snapshot FILE): debugging starts where it was taken."""
    out = _Output()
    try:
        machine = open_machine(image_path, console=out.guest)
    except LoadError as error:
        raise CliError(str(error)) from None
    interactive = script is None and sys.stdin.isatty()
    commands = _commands(script, out.settle)
    if script is not None:
        commands = iter(list(commands))  # read the whole script now: errors before the run

    def attach(machine: Machine) -> None:
        if kernel_log:
            attach_kernel_log(machine.session, out.flush)

    attach(machine)
    debugger = Debugger(machine, out.say, _symbols(machine.elf), on_machine=attach)
    repeat = script is None and sys.stdin.isatty()
    last: str | None = None
    try:
        with interrupts_stop(lambda: debugger.machine.session.machine):
            for line in commands:
                if repeat and not line.strip():
                    line = last or ""  # an empty line at the prompt repeats, as in gdb
                try:
                    debugger.execute(line)
                except KeyboardInterrupt:  # not while the guest ran: in a command's own work
                    if not interactive:
                        raise
                    out.say("interrupted")
                    continue
                last = debugger.repeat_of(line) if repeat else None
                if debugger.interrupted is not None and not interactive:
                    out.flush()
                    sys.exit(ExitStatus.INTERRUPTED)
                if debugger.quit:
                    out.say("quit" + ("" if debugger.result else " before the end of the run"))
                    sys.exit(debugger.result.status if debugger.result else 0)
            result = debugger.finish()
    except (CapsuleInternalError, KernelBug, MachineError) as error:
        out.flush()
        raise InternalError(internal_error(error)) from None
    out.flush()
    sys.exit(result.status)
