"""The ``capsule`` command line.

Every failure a user can cause (a bad image, a bad argument) ends with one line on
stderr, ``capsule: <what is wrong>``, and a non-zero status; never a traceback.

Exit status of ``capsule run``: the guest's own status when it halts (seL4_DebugHalt;
0 unless capsule's runtime passed one), otherwise: 2 bad input, 3 the guest stopped on
a fault nobody handles, 4 no thread can run any more, 5 the kernel halted on a guest
error (as seL4's debug kernel does), 6 the instruction limit was reached, 70 internal
error (a bug in capsule: please report it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bootimage import ImageError, load_image_file
from kernel.abi.arch import Arch
from kernel.boot import BootError
from kernel.model.errors import KernelBug
from userland import demo_image

from .cli_cc import cc
from .cli_cspace import cspace
from .cli_debug import debug
from .cli_image import image
from .cli_test import test_command
from .cli_trace import TraceRequest, attach_trace, trace_options
from .machine import MachineError
from .session import Session

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70


class _Console:
    """Guest bytes to stdout, flushed at each newline so output interleaves sanely."""

    def __init__(self) -> None:
        self.out = sys.stdout.buffer
        self.buffer = bytearray()

    def __call__(self, byte: int) -> None:
        self.buffer.append(byte)
        if byte == 0x0A:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.out.write(self.buffer)
            self.out.flush()
            self.buffer.clear()


def fail(message: str, status: int = EXIT_BAD_INPUT) -> None:
    click.echo(f"capsule: {message}", err=True)
    sys.exit(status)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="capsule")
def main() -> None:
    """capsule: seL4's user ABI on a Python kernel, running RV64 and AArch64 guests."""


@main.command()
@click.argument("image_path", metavar="[IMAGE]", required=False, type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice([a.short for a in Arch]), default="riscv64",
              show_default=True, help="Architecture of the built-in demo (when no IMAGE).")
@click.option("--max-instructions", type=click.IntRange(min=1), default=None,
              help="Stop after this many guest instructions (exit status 6).")
@click.option("--stats", is_flag=True, help="Print instruction and kernel-entry counts to stderr.")
@trace_options
@click.option("--gdb", "gdb_address", metavar="HOST:PORT", default=None,
              help="Wait for gdb-multiarch on HOST:PORT (port 0: any free port; the port "
                   "is printed on stderr) and let it debug the guest: threads are TCBs, "
                   "memory is the selected thread's VSpace. Detach lets the run finish.")
@click.option("--gdb-stop-at-syscalls", is_flag=True,
              help="With --gdb: also stop (SIGTRAP) right after every system call. Off by "
                   "default, as it makes 'continue' stop at each one.")
def run(image_path: Path | None, arch: str, max_instructions: int | None, stats: bool,
        trace: TraceRequest | None, gdb_address: str | None,
        gdb_stop_at_syscalls: bool) -> None:
    """Run IMAGE (default: the built-in demo) to completion; guest output on stdout."""
    from .gdb_run import GdbListener, GdbRunError, serve

    path = image_path if image_path is not None else demo_image(arch)
    try:
        loaded = load_image_file(path)
    except ImageError as error:
        fail(str(error))
    if gdb_stop_at_syscalls and gdb_address is None:
        fail("--gdb-stop-at-syscalls needs --gdb")
    listener = None
    if gdb_address is not None:
        try:
            listener = GdbListener.open(gdb_address)
        except GdbRunError as error:
            fail(str(error), error.status)
    console = _Console()
    try:
        session = Session.boot(loaded.root, loaded.config, console)
        if trace is not None:
            attach_trace(trace, session)
        if listener is None:
            result = session.run(max_instructions)
        else:
            def say(line: str) -> None:
                console.flush()
                click.echo(f"capsule: {line}", err=True)

            gdb_result = serve(listener, session, gdb_stop_at_syscalls, say)
            if gdb_result is None:
                console.flush()
                sys.exit(0)
            result = gdb_result
    except BootError as error:
        fail(f"cannot boot {path}: {error}")
    except GdbRunError as error:
        console.flush()
        fail(str(error), error.status)
    except (KernelBug, MachineError) as error:
        console.flush()
        fail(f"internal error: {type(error).__name__}: {error}", EXIT_INTERNAL)
    console.flush()
    if result.kind != "halt":
        click.echo(f"capsule: {result.message}", err=True)
    if stats:
        count = "unknown" if result.instructions is None else str(result.instructions)
        click.echo(
            f"capsule: {count} instructions, {result.kernel_entries} kernel entries, "
            f"{result.ticks} ticks",
            err=True,
        )
    sys.exit(result.status)


main.add_command(image)
main.add_command(test_command)
main.add_command(cspace)
main.add_command(debug)
main.add_command(cc)

if __name__ == "__main__":
    main()
