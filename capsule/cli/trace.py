"""``capsule run --trace``: the trace's options and where its lines go.

The trace is one line per kernel event (:mod:`kernel.views.trace_events`): each system
call, each blocked call completing, each fault delivery, each thread switch. Options:

- ``--trace``: the text form; ``--trace-json``: one JSON object per line instead. Each is
  the whole trace, so giving both is a usage error (runs are deterministic: run twice
  for both forms).
- ``--trace-file FILE``: write the trace to FILE instead of stderr.
- ``--trace-filter KEY=VALUE[,VALUE...]`` / ``KEY!=VALUE[,...]`` (repeatable; KEY one of
  syscall, label, thread, type, event; see :class:`kernel.views.trace_events.TraceFilter`).
  A filter or a trace file alone means ``--trace``.

Guest output stays apart from the trace: the console writes the guest's bytes to stdout
a whole line at a time (``capsule.cli``), and a trace line never waits for a guest line
or cuts into one, so in a terminal every trace line starts on a line of its own; the
characters of a guest line show after the trace lines of their ``DebugPutChar``.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from emulator.session import Session
from kernel.records import dataclass
from kernel.views.trace_events import (
    EventTracer,
    FilterError,
    TraceFilter,
    TraceLine,
    format_line,
    line_json,
)

from .errors import CliError

__all__ = ["TraceRequest", "attach_trace", "trace_options"]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """What ``capsule run`` was asked to trace: the form, the filter, the file (None:
    stderr)."""

    as_json: bool
    filter: TraceFilter
    out: IO[str] | None


def _request(text: bool, as_json: bool, filters: tuple[str, ...],
             out: IO[str] | None) -> TraceRequest | None:
    if text and as_json:
        raise CliError("--trace and --trace-json: choose one (each writes the whole trace; "
                       "runs are deterministic, so run twice for both)")
    if not (text or as_json or filters or out is not None):
        return None
    try:
        chosen = TraceFilter.parse(filters)
    except FilterError as error:
        raise CliError(f"--trace-filter {error}") from None
    return TraceRequest(as_json, chosen, out)


def trace_options(command: _F) -> _F:
    """Give ``command`` the trace options, passed to it as one ``trace`` argument (a
    :class:`TraceRequest`, or None when no trace was asked for)."""

    @functools.wraps(command)
    def wrapper(*args: Any, trace_text: bool, trace_json: bool, trace_filter: tuple[str, ...],
                trace_file: IO[str] | None, **kwargs: Any) -> Any:
        kwargs["trace"] = _request(trace_text, trace_json, trace_filter, trace_file)
        return command(*args, **kwargs)

    options = [
        click.option("--trace", "trace_text", is_flag=True,
                     help="One decoded line per kernel event on stderr, like strace: "
                          "syscalls, blocked calls completing, faults, thread switches."),
        click.option("--trace-json", is_flag=True,
                     help="The trace as one JSON object per line instead."),
        click.option("--trace-filter", "trace_filter", metavar="KEY=V[,V..]", multiple=True,
                     help="Keep only matching trace lines (KEY!=V: drop them). KEY: syscall, "
                          "label, thread, type, event; repeatable (keys combine with and, "
                          "values with or). Implies --trace."),
        click.option("--trace-file", "trace_file", type=click.File("w", encoding="utf-8"),
                     default=None, metavar="FILE",
                     help="Write the trace to FILE instead of stderr. Implies --trace."),
    ]
    decorated: Callable[..., Any] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[return-value]


def attach_trace(request: TraceRequest, session: Session) -> EventTracer:
    """Trace ``session`` as ``request`` says, from now on."""
    out = request.out
    keep = request.filter.accepts

    def sink(line: TraceLine) -> None:
        if not keep(line):
            return
        text = json.dumps(line_json(line)) if request.as_json else format_line(line)
        (out if out is not None else sys.stderr).write(text + "\n")

    return EventTracer(session.kernel, sink)
