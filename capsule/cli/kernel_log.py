"""``--kernel-log`` of ``capsule run`` and ``capsule debug``: seL4's debug-kernel lines.

With the option, each refused invocation and each fault that finds no fault handler
prints one line on stderr, in the shape seL4's debug kernel prints it
(:mod:`kernel.views.kernel_log`). Without it nothing is added to the output. The trace
(``--trace``) is separate: it shows every kernel event, this only what went wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click

from emulator.session import Session
from kernel.views.kernel_log import KernelLog

__all__ = ["attach_kernel_log", "kernel_log_option"]

F = TypeVar("F", bound=Callable[..., object])


def kernel_log_option(command: F) -> F:
    """Give ``command`` the ``--kernel-log`` flag, passed as ``kernel_log: bool``."""
    option = click.option(
        "--kernel-log", is_flag=True,
        help="Print what seL4's debug kernel prints about the guest's mistakes on stderr: "
             "one <<seL4(CPU 0) [...]: ...>> line per refused invocation and a 'Caught ... "
             "while trying to handle: ...' line per fault with no fault handler.")
    return option(command)


def attach_kernel_log(session: Session, before: Callable[[], None]) -> KernelLog:
    """Log ``session``'s kernel on stderr from now on; ``before`` is called ahead of each
    line (to flush the guest's complete output lines first)."""

    def sink(line: str) -> None:
        before()
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return KernelLog(session.kernel, sink)
