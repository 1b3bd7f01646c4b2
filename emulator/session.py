"""Putting a machine together: an image, a kernel and an emulator, booted and ready to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kernel.boot import BootReport, boot
from kernel.config import KernelConfig
from kernel.image import RootTaskImage
from kernel.kernel import Kernel

from .machine import RunResult, UnicornMachine

__all__ = ["Session"]


@dataclass
class Session:
    """A booted system: the machine, its kernel and what boot did."""

    machine: UnicornMachine
    kernel: Kernel
    report: BootReport

    @classmethod
    def boot(
        cls, root: RootTaskImage, config: KernelConfig, console: Callable[[int], None]
    ) -> Session:
        """Create a machine for ``root.arch``, boot the kernel and the root task on it.

        Raises ``kernel.boot.BootError`` when the image cannot boot in ``config``.
        """
        machine = UnicornMachine(root.arch, config.ram_size)
        kernel = Kernel(machine, config, console)
        machine.attach(kernel)
        report = boot(kernel, root)
        return cls(machine, kernel, report)

    def run(self, max_instructions: int | None = None) -> RunResult:
        return self.machine.run(max_instructions)
