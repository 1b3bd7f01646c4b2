"""Putting a machine together: an image, a kernel and an emulator, booted and ready to run.

A :class:`Session` can also be checkpointed between runs and restored into a fresh
machine and kernel (:meth:`Session.checkpoint`, :meth:`Session.restore`): the restored
session runs on to the same output, instruction count and kernel state as the original
would have (DESIGN.md decision 7: kernel state is plain data, so it pickles).
"""

from __future__ import annotations

from collections.abc import Callable

from kernel.boot import BootReport, boot
from kernel.config import KernelConfig
from kernel.image import RootTaskImage
from kernel.kernel import Kernel
from kernel.records import dataclass

from .machine import MachineState, RunResult, UnicornMachine

# pickle and .safe_pickle are imported by the checkpoint methods that use them: a run
# that never checkpoints does not load them at start-up.

__all__ = ["Checkpoint", "Session"]


class _Recorder:
    """The console the kernel prints to: keeps every byte (a checkpoint holds the
    output so far) and passes it on."""

    __slots__ = ("output", "sink")

    def __init__(self, sink: Callable[[int], None], output: bytes = b"") -> None:
        self.output = bytearray(output)
        self.sink = sink

    def __call__(self, byte: int) -> None:
        self.output.append(byte)
        self.sink(byte)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A whole system between two runs, plain data: the machine's state, the kernel's
    (pickled: :class:`kernel.model.state.KernelState`), what boot reported, the console
    output so far and the instructions run so far (None if counting is unavailable).

    :meth:`to_bytes` / :meth:`from_bytes` give its stored form (a pickle, loaded by
    :func:`emulator.safe_pickle.loads`, which builds capsule's own classes only); the
    snapshot files of :mod:`emulator.snapshot` wrap it with a version and a digest.
    """

    machine: MachineState
    kernel: bytes
    report: BootReport
    output: bytes
    instructions: int | None

    def to_bytes(self) -> bytes:
        import pickle

        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> Checkpoint:
        from . import safe_pickle

        checkpoint = safe_pickle.loads(data)
        if not isinstance(checkpoint, Checkpoint):
            raise ValueError("not a capsule checkpoint")
        return checkpoint


@dataclass
class Session:
    """A booted system: the machine, its kernel and what boot did.

    ``instructions`` counts the guest instructions of every :meth:`run` so far (of the
    original session's runs too, after a restore; None once counting was unavailable).
    """

    machine: UnicornMachine
    kernel: Kernel
    report: BootReport
    instructions: int | None
    _console: _Recorder

    @classmethod
    def boot(
        cls, root: RootTaskImage, config: KernelConfig, console: Callable[[int], None]
    ) -> Session:
        """Create a machine for ``root.arch``, boot the kernel and the root task on it.

        Raises ``kernel.boot.BootError`` when the image cannot boot in ``config``.
        """
        machine = UnicornMachine(root.arch, config.ram_size)
        recorder = _Recorder(console)
        kernel = Kernel(machine, config, recorder)
        machine.attach(kernel)
        report = boot(kernel, root)
        return cls(machine, kernel, report, 0, recorder)

    @property
    def console(self) -> Callable[[int], None]:
        """Where the guest's bytes go (what :meth:`boot` or :meth:`restore` was given)."""
        return self._console.sink

    @property
    def output(self) -> bytes:
        """Every byte the guest printed so far (before a restore too)."""
        return bytes(self._console.output)

    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run the machine (:meth:`UnicornMachine.run`), counting its instructions, also
        when an exception from a kernel observer ends the run (a debugger's stop)."""
        try:
            result = self.machine.run(max_instructions)
        finally:
            if self.instructions is not None:
                ran = self.machine.ran
                self.instructions = None if ran is None else self.instructions + ran
        return result

    def checkpoint(self) -> Checkpoint:
        """The whole system now. Call between runs (after :meth:`run` returned, e.g. on
        a pause); the session can go on running afterwards, unchanged."""
        import pickle

        return Checkpoint(self.machine.export_state(), pickle.dumps(self.kernel),
                          self.report, self.output, self.instructions)

    @classmethod
    def restore(cls, checkpoint: Checkpoint, console: Callable[[int], None]) -> Session:
        """A fresh machine and kernel in the state of ``checkpoint``; ``console`` gets
        what the guest prints from now on (the output before is :attr:`output`'s
        start). Observers (tracing, invariant checks) are not state: add them again."""
        from . import safe_pickle

        machine = UnicornMachine.from_state(checkpoint.machine)
        kernel = safe_pickle.loads(checkpoint.kernel)
        if not isinstance(kernel, Kernel):
            raise ValueError("the checkpoint's kernel part is not a kernel")
        recorder = _Recorder(console, checkpoint.output)
        kernel.attach(machine, recorder)
        machine.attach(kernel)
        return cls(machine, kernel, checkpoint.report, checkpoint.instructions, recorder)
