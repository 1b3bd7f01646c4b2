"""``capsule run [IMAGE]``: boot an image and run it to its end, guest output on stdout.

Every failure a user can cause (a bad image, a bad argument, a usage error) ends with
one line on stderr, ``capsule: <what is wrong>``, and status 2; never a traceback nor a
usage block (``capsule.cli.errors``).

Exit status (``emulator.exitstatus``; the one table is in the README): the guest's own
status when it halted by itself, unless that status is one of capsule's own codes (2,
118-125, 130: then 118); 2 bad input; 119 killed from gdb; 120 the gdb connection was
lost; 121 a fault nobody handles; 122 no thread can run; 123 the kernel halted on a
guest error; 124 the instruction limit; 125 an internal error (a bug in capsule: please
report it); 130 interrupted by SIGINT (Ctrl-C). Every status but the guest's own comes
with one line on stderr saying what happened.

``capsule test`` runs each case through this command (``capsule.cli.testrunner``).

The command is a user of the Python API: :class:`capsule.Machine` loads, boots and runs
the image (``capsule resume`` takes a snapshot up the same way); what it adds is the
output (the console, the stop line, the counts), the trace and kernel-log sinks, Ctrl-C
and the GDB stub, which serves the machine's session.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from capsule.errors import InternalError, LoadError, NoSuchThread, Unsupported
from capsule.machine import Machine
from capsule.records import Stop, StopKind
from emulator.exitstatus import ExitStatus, exit_status, stop_line
from emulator.interrupt import interrupts_stop
from emulator.machine import MachineError
from kernel.abi.arch import Arch
from kernel.model.errors import KernelBug
from kernel.records import dataclass
from userland import demo_image

from .errors import Command
from .image import _size_option
from .kernel_log import attach_kernel_log, kernel_log_option
from .trace import TraceRequest, attach_trace, trace_options

if TYPE_CHECKING:
    # The GDB stub (emulator.gdb_run and what it imports) is imported only with --gdb.
    from emulator.gdb_run import GdbListener

__all__ = ["Console", "fail", "finish", "internal_error", "run"]


class Console:
    """Guest bytes to stdout, flushed at each newline so output interleaves sanely."""

    def __init__(self) -> None:
        self.out = sys.stdout.buffer
        self.buffer = bytearray()
        self.open_line = False
        """The guest's last byte written was not a newline."""

    def __call__(self, data: bytes) -> None:
        self.buffer += data
        if 0x0A in data:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.out.write(self.buffer)
            self.out.flush()
            self.open_line = self.buffer[-1] != 0x0A
            self.buffer.clear()

    def say(self, line: str) -> None:
        """``capsule: line`` on stderr, after the guest's pending output. On a terminal,
        a line the guest left open is ended first (on stderr: stdout stays the guest's)."""
        self.flush()
        start = "\n" if self.open_line and sys.stdout.isatty() and sys.stderr.isatty() else ""
        click.echo(f"{start}capsule: {line}", err=True)


def fail(message: str, status: int = ExitStatus.USAGE) -> NoReturn:
    click.echo(f"capsule: {message}", err=True)
    sys.exit(status)


def internal_error(error: BaseException) -> str:
    """The one line for a bug in capsule (``error``: the API's InternalError, or the
    kernel's or the machine's own exception)."""
    cause = error.__cause__ if isinstance(error, InternalError) and error.__cause__ else error
    return f"internal error: {type(cause).__name__}: {cause}"


@click.command(cls=Command, epilog="\b\nExit status: the guest's own when it halts by itself; "
              "capsule's own codes are 2, 118-125 and 130 (see the README).")
@click.argument("image_path", metavar="[IMAGE]", required=False, type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice([a.short for a in Arch]), default=None,
              help="Architecture of the built-in demo (when no IMAGE) [default: riscv64]; "
                   "with IMAGE, the architecture it must be for.")
@click.option("--max-instructions", type=click.IntRange(min=1), default=None,
              help="Stop after this many guest instructions (exit status 124).")
@click.option("--stats", is_flag=True, help="Print instruction and kernel-entry counts to stderr.")
@click.option("--ram-size", callback=_size_option,
              help="For an ELF input: guest RAM, e.g. 512M (default: as QEMU's virt platform "
                   "under seL4's simulate, or an elfloader image's device tree).")
@click.option("--root-cnode-bits", type=int,
              help="For an ELF input: log2 of the root CNode's slots (default: 12, or more "
                   "if boot needs the room).")
@click.option("--mcs", is_flag=True, default=None,
              help="For an ELF input: seL4's MCS configuration (an elfloader image's "
                   "kernel says itself whether it is MCS).")
@trace_options
@kernel_log_option
@click.option("--gdb", "gdb_address", metavar="HOST:PORT", default=None,
              help="Wait for gdb-multiarch on HOST:PORT (port 0: any free port; the port "
                   "is printed on stderr) and let it debug the guest: threads are TCBs, "
                   "memory is the selected thread's VSpace. Detach lets the run finish.")
@click.option("--gdb-stop-at-syscalls", is_flag=True,
              help="With --gdb: also stop (SIGTRAP) right after every system call. Off by "
                   "default, as it makes 'continue' stop at each one.")
@click.option("--snapshot-at", type=click.IntRange(min=0), default=None, metavar="N",
              help="After N guest instructions, save the whole system to --save FILE "
                   "(capsule resume FILE goes on from there); the run then goes on.")
@click.option("--save", "save_path", type=click.Path(path_type=Path), default=None,
              metavar="FILE", help="Where --snapshot-at writes its snapshot.")
@click.option("--stop-after-save", is_flag=True,
              help="With --snapshot-at: end once the snapshot is saved (status 0).")
def run(image_path: Path | None, arch: str | None, max_instructions: int | None, stats: bool,
        ram_size: int | None, root_cnode_bits: int | None, mcs: bool | None,
        trace: TraceRequest | None, kernel_log: bool, gdb_address: str | None,
        gdb_stop_at_syscalls: bool, snapshot_at: int | None, save_path: Path | None,
        stop_after_save: bool) -> None:
    """Run IMAGE (default: the built-in demo) to completion; guest output on stdout.

    IMAGE is a capsule image, a root task's ELF or the elfloader image seL4's build
    system gives QEMU (its root task runs; RAM as its device tree says)."""
    path = image_path if image_path is not None else demo_image(arch or Arch.RISCV64.short)
    if gdb_stop_at_syscalls and gdb_address is None:
        fail("--gdb-stop-at-syscalls needs --gdb")
    saving = _snapshot_request(snapshot_at, save_path, stop_after_save, gdb_address)
    console = Console()
    try:
        machine = Machine.load(path, console=console, ram_size=ram_size,
                               root_cnode_bits=root_cnode_bits, mcs=mcs)
    except LoadError as error:
        fail(str(error))
    except KeyboardInterrupt:
        console.say("interrupted (SIGINT) before the guest started")
        sys.exit(ExitStatus.INTERRUPTED)
    if arch is not None and machine.arch != arch:
        fail(f"--arch {arch}: {path} is a {machine.arch} image")
    listener = None
    if gdb_address is not None:
        from emulator.gdb_run import GdbListener, GdbRunError

        try:
            listener = GdbListener.open(gdb_address)
        except GdbRunError as error:
            fail(str(error), error.status)
    if trace is not None:
        attach_trace(trace, machine.session)
    if kernel_log:
        attach_kernel_log(machine.session, console.flush)
    try:
        if listener is not None:
            _serve_gdb(machine, listener, gdb_stop_at_syscalls, max_instructions, console, stats)
        with interrupts_stop(machine.session.machine):
            if saving is not None:
                stop = _run_saving(machine, saving, max_instructions, console, stats)
            else:
                stop = machine.run(max_instructions=max_instructions)
    except (InternalError, KernelBug, MachineError) as error:
        console.flush()
        fail(internal_error(error), ExitStatus.INTERNAL)
    except KeyboardInterrupt:  # outside a run (waiting for gdb)
        console.say("interrupted (SIGINT)" + _where(machine))
        sys.exit(ExitStatus.INTERRUPTED)
    finish(console, machine, stop, stats)


def finish(console: Console, machine: Machine, stop: Stop, stats: bool,
           limit: int | None = None) -> NoReturn:
    """End the command for a run that stopped as ``stop``: its line on stderr, the
    counts (``stats``: instructions since boot, snapshots included) and its exit status
    (:attr:`capsule.Stop.status`, the README's table). ``limit``: the whole run's
    instruction limit, named in the line when it ran out."""
    console.flush()
    line: str | None = stop.message
    if stop.kind is StopKind.HALT and stop.status != ExitStatus.GUEST_RESERVED:
        line = None  # the guest's own status says it all
    elif stop.kind is StopKind.INTERRUPT:
        line = f"{stop.message}, {_count(machine.instructions)} instructions run"
    elif stop.kind is StopKind.LIMIT and limit is not None:
        line = f"instruction limit {limit} reached"
    if line is not None:
        console.say(line)
    _stats(console, machine, stats)
    sys.exit(stop.status)


def _stats(console: Console, machine: Machine, stats: bool) -> None:
    if stats:
        console.say(f"{_count(machine.instructions)} instructions, {machine.kernel_entries} "
                    f"kernel entries, {machine.ticks} ticks")


def _serve_gdb(machine: Machine, listener: GdbListener, stop_at_syscalls: bool,
               max_instructions: int | None, console: Console, stats: bool) -> NoReturn:
    """Let gdb drive the machine's session to its end (the stub runs it itself)."""
    from emulator.gdb_run import GdbRunError, serve

    try:
        result = serve(listener, machine.session, stop_at_syscalls, console.say,
                       max_instructions)
    except GdbRunError as error:
        console.flush()
        fail(str(error), error.status)
    console.flush()
    if result is None:
        sys.exit(ExitStatus.GDB_KILLED)
    line = stop_line(result)
    if line is not None:
        console.say(line)
    _stats(console, machine, stats)
    sys.exit(exit_status(result))


@dataclass(frozen=True, slots=True)
class _Saving:
    at: int
    path: Path
    stop: bool


def _snapshot_request(at: int | None, path: Path | None, stop: bool,
                      gdb_address: str | None) -> _Saving | None:
    """The snapshot asked for, its options checked (before the run: a usage error must
    not cost a run)."""
    if at is None:
        if path is not None or stop:
            fail("--save and --stop-after-save go with --snapshot-at N")
        return None
    if path is None:
        fail("--snapshot-at needs --save FILE")
    if gdb_address is not None:
        fail("--snapshot-at and --gdb: choose one (gdb has the run)")
    if not path.parent.is_dir():
        fail(f"--save {path}: {path.parent} is not a directory")
    return _Saving(at, path, stop)


def _run_saving(machine: Machine, saving: _Saving, max_instructions: int | None,
                console: Console, stats: bool) -> Stop:
    """Run to instruction ``saving.at``, save the snapshot there, then (unless
    ``saving.stop``) run on to the end. Taking the snapshot changes nothing the guest
    does: the output, the status and the counts are those of a run without it."""
    late = max_instructions is not None and max_instructions <= saving.at
    if late or saving.at > 0:
        stop = machine.run(max_instructions=max_instructions if late else saving.at)
        if late or stop.kind is not StopKind.LIMIT:
            if stop.kind not in (StopKind.LIMIT, StopKind.INTERRUPT):
                console.say(f"the run ended before instruction {saving.at}: no snapshot saved")
            return stop
    try:
        size = machine.save(saving.path)
    except OSError as error:
        console.flush()
        fail(f"cannot write snapshot {saving.path}: {error.strerror or error}")
    except Unsupported as error:
        console.flush()
        fail(str(error))
    console.say(f"snapshot at instruction {saving.at} saved to {saving.path} ({size} bytes)")
    if saving.stop:
        console.say("stopped after the snapshot")
        _stats(console, machine, stats)
        sys.exit(0)  # on purpose, the run not over: as a pause
    rest = None if max_instructions is None else max_instructions - saving.at
    stop = machine.run(max_instructions=rest)
    if stop.kind is StopKind.LIMIT:
        return Stop(stop.kind, stop.condition, stop.thread, stop.pc, stop.syscall, stop.fault,
                    stop.status, f"instruction limit {max_instructions} reached",
                    stop.instructions)
    return stop


def _count(instructions: int | None) -> str:
    return "unknown" if instructions is None else str(instructions)


def _where(machine: Machine) -> str:
    """Where a machine stands, for a stop outside a run: the current thread and its pc."""
    try:
        thread = machine.thread()
    except NoSuchThread:
        return ": no thread"
    pc = machine.registers()["pc"]
    return f': thread "{thread.name}" at pc {pc:#x}, {_count(machine.instructions)} instructions run'
