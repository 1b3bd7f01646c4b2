"""Jobs in forked children of a warm interpreter: a process per job, no start-up per job.

``capsule test`` runs each case in a process of its own (a guest cannot disturb another
case, a hung one can be killed), but starting an interpreter and importing Unicorn and
the kernel costs about as much as a small case. So each job runs in a child *forked*
from the runner, which has imported all that already: the child starts in milliseconds
with a copy of a warm interpreter and shares nothing with the other jobs afterwards.

Contract of :func:`run_forked`:

- A job is a function called in the child; it writes to file descriptors 1 and 2
  (``sys.stdout`` / ``sys.stderr`` are fresh objects over them, stdin is ``/dev/null``)
  and returns the exit status; a ``SystemExit`` gives its code, any other exception is a
  traceback on stderr and status 125 (``ExitStatus.INTERNAL``).
- Limits count the job's own work: ``cpu_limit`` seconds of CPU time (``RLIMIT_CPU``, in
  whole seconds, rounded up), so a loaded machine does not make jobs time out; and, as a
  backstop for a job that does not get to run at all, ``wall_limit`` seconds of wall time.
  A job over a limit is killed; its :class:`Finished` says which limit.
- The scheduler is this one thread (``selectors`` over the children's pipes): a process
  with other threads must not fork. It runs at most ``parallel`` children at once and
  kills every child it started if it is interrupted.
"""

from __future__ import annotations

import math
import os
import resource
import selectors
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import field

from emulator.exitstatus import ExitStatus
from kernel.records import dataclass

__all__ = ["Finished", "run_forked"]

_TICK = 0.05
"""Seconds between two looks at the children when no output arrives."""


@dataclass(frozen=True, slots=True)
class Finished:
    """How a job ended. ``status`` is its exit status, or None when a signal ended it
    (``signal``); ``timed_out`` is ``"cpu"`` or ``"wall"`` when a limit killed it."""

    stdout: bytes
    stderr: bytes
    status: int | None
    signal: int | None
    seconds: float
    """Wall time, start to end."""
    cpu_seconds: float
    timed_out: str | None = None


@dataclass
class _Child:
    index: int
    pid: int
    start: float
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    open_fds: int = 2
    timed_out: str | None = None
    wait_status: int | None = None
    cpu_seconds: float = 0.0


def run_forked(jobs: Sequence[Callable[[], int]], parallel: int, cpu_limit: float,
               wall_limit: float,
               progress: Callable[[int, list[int]], None] | None = None,
               ) -> Iterator[tuple[int, Finished]]:
    """Run ``jobs`` (module docstring), yielding ``(index, Finished)`` as each ends.

    ``progress(finished_count, running_indices)`` is called whenever a job starts or ends.
    """
    cpu_seconds = max(1, math.ceil(cpu_limit))
    selector = selectors.DefaultSelector()
    children: dict[int, _Child] = {}
    next_job = 0
    done = 0
    try:
        while next_job < len(jobs) or children:
            while next_job < len(jobs) and len(children) < max(1, parallel):
                child = _start(next_job, jobs[next_job], cpu_seconds, selector)
                children[child.pid] = child
                next_job += 1
                if progress is not None:
                    progress(done, sorted(c.index for c in children.values()))
            for key, _ in selector.select(_TICK):
                child, is_stdout = key.data
                data = os.read(key.fd, 65536)
                if data:
                    (child.out if is_stdout else child.err).extend(data)
                    continue
                selector.unregister(key.fd)
                os.close(key.fd)
                child.open_fds -= 1
            now = time.monotonic()
            for child in list(children.values()):
                if child.wait_status is None:
                    _reap(child)
                if child.wait_status is None and now - child.start > wall_limit:
                    child.timed_out = "wall"
                    os.kill(child.pid, signal.SIGKILL)
                if child.wait_status is not None and child.open_fds == 0:
                    del children[child.pid]
                    done += 1
                    if progress is not None:
                        progress(done, sorted(c.index for c in children.values()))
                    yield child.index, _finished(child, now, cpu_seconds)
    finally:
        for child in children.values():
            if child.wait_status is None:
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
        for key in list(selector.get_map().values()):
            os.close(key.fd)
        selector.close()


def _start(index: int, job: Callable[[], int], cpu_seconds: int,
           selector: selectors.BaseSelector) -> _Child:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(out_r)
        os.close(err_r)
        _child(job, out_w, err_w, cpu_seconds)
    os.close(out_w)
    os.close(err_w)
    child = _Child(index, pid, time.monotonic())
    selector.register(out_r, selectors.EVENT_READ, (child, True))
    selector.register(err_r, selectors.EVENT_READ, (child, False))
    return child


def _child(job: Callable[[], int], out_w: int, err_w: int, cpu_seconds: int) -> None:
    """In the forked child: plumbing and limits, the job, then ``os._exit``."""
    status = int(ExitStatus.INTERNAL)
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (null, out_w, err_w):
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            status = job()
        except SystemExit as exit_:
            code = exit_.code
            status = code if isinstance(code, int) else (0 if code is None else 1)
        except BaseException:  # a bug in the job: reported, never a hang
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status & 0xFF)


def _reap(child: _Child) -> None:
    pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        child.wait_status = wait_status
        child.cpu_seconds = usage.ru_utime + usage.ru_stime


def _finished(child: _Child, now: float, cpu_seconds: int) -> Finished:
    assert child.wait_status is not None
    status = os.waitstatus_to_exitcode(child.wait_status)
    killed_by = -status if status < 0 else None
    timed_out = child.timed_out
    if timed_out is None and (killed_by == signal.SIGXCPU or (
            killed_by == signal.SIGKILL and child.cpu_seconds >= cpu_seconds)):
        timed_out = "cpu"  # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one
    return Finished(bytes(child.out), bytes(child.err), None if killed_by else status,
                    killed_by, now - child.start, child.cpu_seconds, timed_out)
