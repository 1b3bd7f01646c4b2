"""``capsule debug IMAGE [--script FILE]``: a syscall-level debugger (see emulator.debugger).

Commands come from ``--script FILE``, else from stdin (with a prompt when stdin is a
terminal). The run stops at the end of each syscall chosen by ``step`` or a breakpoint.
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

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from bootimage import ImageError, load_image_file
from kernel.boot import BootError
from kernel.model.errors import KernelBug

from .cli_errors import CliError, Command, InternalError
from .debugger import HELP, Debugger
from .exitstatus import ExitStatus, exit_status
from .interrupt import interrupts_stop
from .machine import MachineError
from .session import Session

__all__ = ["debug"]


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


def _commands(script: Path | None, interactive: bool) -> Iterator[str]:
    if script is not None:
        try:
            lines = script.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"cannot read script {script}: {error}") from None
        yield from lines
        return
    while True:
        try:
            if interactive:
                click.echo("(capsule) ", nl=False)
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            if not interactive:
                raise
            click.echo()  # Ctrl-C at the prompt: a fresh prompt
            continue
        if not line:
            return
        yield line


@click.command(cls=Command, epilog="\b\nCommands:\n" + HELP)
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--script", type=click.Path(path_type=Path), default=None,
              help="Read debugger commands from FILE (default: stdin).")
def debug(image_path: Path, script: Path | None) -> None:
    """Debug IMAGE at system-call level: step (to the end of the next syscall), break, inspect."""
    try:
        loaded = load_image_file(image_path)
    except ImageError as error:
        raise CliError(str(error)) from None
    interactive = script is None and sys.stdin.isatty()
    commands = _commands(script, interactive)
    if script is not None:
        commands = iter(list(commands))  # read the whole script now: errors before the run
    out = _Output()
    try:
        session = Session.boot(loaded.root, loaded.config, out.guest)
    except BootError as error:
        raise CliError(f"cannot boot {image_path}: {error}") from None
    debugger = Debugger(session, out.say)
    try:
        with interrupts_stop(session.machine):
            for line in commands:
                try:
                    debugger.execute(line)
                except KeyboardInterrupt:  # not while the guest ran: in a command's own work
                    if not interactive:
                        raise
                    out.say("interrupted")
                    continue
                if debugger.interrupted is not None and not interactive:
                    out.flush()
                    sys.exit(ExitStatus.INTERRUPTED)
                if debugger.quit:
                    out.say("quit" + ("" if debugger.result else " before the end of the run"))
                    sys.exit(exit_status(debugger.result) if debugger.result else 0)
            result = debugger.finish()
    except (KernelBug, MachineError) as error:
        out.flush()
        raise InternalError(f"internal error: {type(error).__name__}: {error}") from None
    out.flush()
    sys.exit(exit_status(result))
