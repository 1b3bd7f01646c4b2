"""SIGINT (Ctrl-C) during a run: the guest stops within milliseconds, whatever it runs.

Unicorn's ``emu_start`` runs a whole time slice in C. A Python signal handler runs only
when the interpreter gets control back on the main thread (at the guest's next trap into
the kernel, or at the end of the slice), which a guest computing without system calls
under a large ``tick_instructions`` can put off for minutes. While :func:`interrupts_stop`
is active:

- The Python-level SIGINT handler decides, on the main thread and so in step with the
  run: while a run is in progress it asks the machine to end it
  (:meth:`UnicornMachine.interrupt`); otherwise it raises ``KeyboardInterrupt`` as
  Python's default handler would (at the debugger's prompt, while booting).
- Python's C-level handler also writes the signal number to a wakeup socket at once
  (``signal.set_wakeup_fd``). A watcher thread blocked on that socket then kicks the
  machine (:meth:`UnicornMachine.kick`: ``uc_emu_stop``, which Unicorn's own timeout
  calls from another thread; ctypes releases the GIL while ``emu_start`` runs, so the
  watcher gets to run) every few milliseconds until the handler has run. A kick only
  brings the slice back to Python, where the pending handler runs; the slice then goes
  on unless the handler ended the run. So a late kick, or one for a signal the handler
  already dealt with, changes nothing; only the handler decides.

The run then returns a result of kind ``"interrupt"``, the kernel entry in progress (if
any) completed: the caller decides what to print and whether to resume.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from .machine import UnicornMachine

__all__ = ["REASON", "interrupts_stop"]

REASON = "interrupted (SIGINT)"
"""The reason given to :meth:`UnicornMachine.interrupt`; it starts the result's message."""

_KICK_SECONDS = 0.02
"""How often the watcher kicks the machine until the handler has run."""
_KICK_FOR_SECONDS = 2.0
"""How long at most: the handler may have run before the watcher saw the signal."""


class _Handled:
    """How many times the Python-level handler has run (written on the main thread only)."""

    count = 0


@contextmanager
def interrupts_stop(machine: UnicornMachine | Callable[[], UnicornMachine]) -> Iterator[None]:
    """While active, SIGINT ends ``machine``'s run in progress (module docstring); given
    a function instead, the machine it returns at the time (the debugger's changes when
    it restores a snapshot).

    Outside the main thread (where Python cannot install signal handlers) this does
    nothing and Python's usual ``KeyboardInterrupt`` applies.
    """
    current = machine if not isinstance(machine, UnicornMachine) else _constant(machine)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = _Handled()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handled.count += 1
        if not current().interrupt(REASON):
            raise KeyboardInterrupt

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        old_handler = signal.signal(signal.SIGINT, on_signal)
    except BaseException:
        signal.set_wakeup_fd(old_fd)
        reader.close()
        writer.close()
        raise
    closing = threading.Event()
    watcher = threading.Thread(target=_watch, args=(current, handled, reader, closing),
                               name="capsule-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_handler)
        signal.set_wakeup_fd(old_fd)
        closing.set()
        writer.close()  # the watcher's recv returns b"" and it ends
        watcher.join(timeout=1.0)
        reader.close()


def _constant(machine: UnicornMachine) -> Callable[[], UnicornMachine]:
    return lambda: machine


def _watch(machine: Callable[[], UnicornMachine], handled: _Handled, reader: socket.socket,
           closing: threading.Event) -> None:
    """The watcher thread: after each SIGINT, kick the machine until the handler ran."""
    while not closing.is_set():
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        if signal.SIGINT not in data:
            continue
        before = handled.count
        deadline = time.monotonic() + _KICK_FOR_SECONDS
        while handled.count == before and time.monotonic() < deadline:
            machine().kick()
            if closing.wait(_KICK_SECONDS):
                return
