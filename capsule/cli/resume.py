"""``capsule resume FILE``: take up a snapshot (``capsule run --snapshot-at N --save FILE``,
or the debugger's ``snapshot FILE``) and run it to its end, in a fresh process.

The guest goes on exactly as the run it was taken from would have: the same output from
there on, the same status, and the same counts (``--stats`` gives instructions since
boot, the ones before the snapshot included). Guest output printed before the snapshot
is in the file; ``--replay-output`` prints it first, so stdout is the whole run's.

A file that is not a snapshot this capsule can take up (another format or capsule
version, truncated, damaged) is one line ``capsule: FILE: ...`` and status 2
(``emulator.snapshot``). Exit statuses otherwise as ``capsule run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from capsule.errors import InternalError, LoadError
from capsule.machine import Machine
from emulator.exitstatus import ExitStatus
from emulator.interrupt import interrupts_stop
from emulator.machine import MachineError
from kernel.model.errors import KernelBug

from .errors import Command
from .kernel_log import attach_kernel_log, kernel_log_option
from .run import Console, fail, finish, internal_error
from .trace import TraceRequest, attach_trace, trace_options

__all__ = ["resume"]


@click.command(cls=Command, epilog="\b\nExit status: as capsule run (see the README).")
@click.argument("snapshot_path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--max-instructions", type=click.IntRange(min=1), default=None,
              help="Stop after this many more guest instructions (exit status 124).")
@click.option("--stats", is_flag=True,
              help="Print instruction (since boot), kernel-entry and tick counts to stderr.")
@click.option("--replay-output", is_flag=True,
              help="Print the guest output from before the snapshot first.")
@trace_options
@kernel_log_option
def resume(snapshot_path: Path, max_instructions: int | None, stats: bool,
           replay_output: bool, trace: TraceRequest | None, kernel_log: bool) -> None:
    """Take up the snapshot in FILE and run it to its end; guest output on stdout."""
    console = Console()
    try:
        machine = Machine.from_snapshot(snapshot_path, console=console)
    except LoadError as error:
        fail(str(error))
    if replay_output:
        console.out.write(machine.output)
        console.out.flush()
        console.open_line = not machine.output.endswith(b"\n")
    if trace is not None:
        attach_trace(trace, machine.session)
    if kernel_log:
        attach_kernel_log(machine.session, console.flush)
    try:
        with interrupts_stop(machine.session.machine):
            stop = machine.run(max_instructions=max_instructions)
    except (InternalError, KernelBug, MachineError) as error:
        console.flush()
        fail(internal_error(error), ExitStatus.INTERNAL)
    except KeyboardInterrupt:
        console.say("interrupted (SIGINT)")
        sys.exit(ExitStatus.INTERRUPTED)
    finish(console, machine, stop, stats, max_instructions)
