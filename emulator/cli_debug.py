"""``capsule debug IMAGE [--script FILE]``: a syscall-level debugger (see emulator.debugger).

Commands come from ``--script FILE``, else from stdin (with a prompt when stdin is a
terminal). The run stops at the end of each syscall chosen by ``step`` or a breakpoint.
When the commands run out (without ``quit``) the run continues to its end, breakpoints
disabled. Everything goes to stdout: guest output is flushed before each debugger line
(ended with a newline if the guest left a line open, so debugger lines stay whole).

Exit status: the guest's, as ``capsule run`` (0 after ``quit``). A bad IMAGE or an
unreadable script is one line ``capsule: ...`` with status 2; a bug in capsule, 70.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from bootimage import ImageError, load_image_file
from kernel.boot import BootError
from kernel.model.errors import KernelBug

from .cli_image import CliError, _Command
from .debugger import HELP, Debugger
from .machine import MachineError
from .session import Session

__all__ = ["debug"]


class _InternalError(CliError):
    exit_code = 70


class _Output:
    """Guest bytes and debugger lines, interleaved on stdout."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.open_line = False

    def guest(self, byte: int) -> None:
        self.buffer.append(byte)
        if byte == 0x0A:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            sys.stdout.flush()
            sys.stdout.buffer.write(self.buffer)
            sys.stdout.buffer.flush()
            self.open_line = self.buffer[-1] != 0x0A
            self.buffer.clear()

    def say(self, line: str) -> None:
        self.flush()
        if self.open_line:
            line, self.open_line = "\n" + line, False
        click.echo(line)
        sys.stdout.flush()


def _commands(script: Path | None) -> Iterator[str]:
    if script is not None:
        try:
            lines = script.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"cannot read script {script}: {error}") from None
        yield from lines
        return
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            click.echo("(capsule) ", nl=False)
        line = sys.stdin.readline()
        if not line:
            return
        yield line


@click.command(cls=_Command, epilog="\b\nCommands:\n" + HELP)
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--script", type=click.Path(path_type=Path), default=None,
              help="Read debugger commands from FILE (default: stdin).")
def debug(image_path: Path, script: Path | None) -> None:
    """Debug IMAGE at system-call level: step (to the end of the next syscall), break, inspect."""
    try:
        loaded = load_image_file(image_path)
    except ImageError as error:
        raise CliError(str(error)) from None
    commands = _commands(script)
    if script is not None:
        commands = iter(list(commands))  # read the whole script now: errors before the run
    out = _Output()
    try:
        session = Session.boot(loaded.root, loaded.config, out.guest)
    except BootError as error:
        raise CliError(f"cannot boot {image_path}: {error}") from None
    debugger = Debugger(session, out.say)
    try:
        for line in commands:
            debugger.execute(line)
            if debugger.quit:
                out.say("quit" + ("" if debugger.result else " before the end of the run"))
                sys.exit(debugger.result.status if debugger.result else 0)
        result = debugger.finish()
    except (KernelBug, MachineError) as error:
        out.flush()
        raise _InternalError(f"internal error: {type(error).__name__}: {error}") from None
    out.flush()
    sys.exit(result.status)
