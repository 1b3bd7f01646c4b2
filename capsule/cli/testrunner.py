"""The regression runner behind ``capsule test DIR``: discover, run, compare, report.

The test-case format is documented in ``capsule/cli/TESTFORMAT.md``. In short: each
``NAME.img`` in DIR is a case; ``NAME.expected`` (exact stdout), ``NAME.status`` (exit
status, default 0) and ``NAME.args`` (extra ``capsule run`` options) are optional.

Stages, each a function with its own contract:

- :func:`discover` reads DIR into :class:`Case` records, or raises :class:`SuiteError`
  (bad input: the CLI exits 2). It never runs anything.
- :func:`run_suite` runs every case as ``capsule run`` would, each in a process of its
  own forked from this one (``capsule.cli.forkpool``: isolation without an interpreter
  start-up per case), ``jobs`` at a time, under a limit of CPU time per case, and judges
  them, verdicts in input order; :func:`run_case` runs one and returns its
  :class:`Outcome`.
- :func:`judge` compares an outcome with a case's expectations: a pure function.
- :func:`format_report`, :func:`summary_line`, :func:`junit_xml` and :func:`bless`
  present or record the verdicts.

Nothing here raises for a guest's misbehaviour: a case whose image does not load, whose
run times out, or whose ``capsule run`` reports an internal error is an *error* verdict
for that case only.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
import signal
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path

from bootimage import ImageError, load_image_file
from emulator.exitstatus import ExitStatus
from kernel.records import dataclass

from .forkpool import Finished, run_forked
from .run import run

__all__ = [
    "Case",
    "Outcome",
    "SuiteError",
    "Verdict",
    "Kind",
    "bless",
    "diff_text",
    "discover",
    "format_report",
    "judge",
    "junit_xml",
    "run_capsule",
    "run_case",
    "run_suite",
    "summary_line",
]

IMAGE_SUFFIX = ".img"
SIDECARS = (".expected", ".status", ".args")
EXIT_INTERNAL = int(ExitStatus.INTERNAL)
"""``capsule run``'s status for a bug in capsule: an error verdict, never a pass."""
WALL_FACTOR = 10
"""A case may take this many times its CPU-time limit in wall time (a backstop)."""
_STDERR_LINES = 20


class SuiteError(Exception):
    """DIR cannot be used as a test directory; the message is one line naming the problem."""


class Kind(Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Case:
    """One test case: an image and what its run must produce.

    ``expected_stdout`` is None when there is no ``NAME.expected`` (stdout is then not
    compared). ``args`` are extra ``capsule run`` arguments, already split.
    """

    name: str
    image: Path
    expected_stdout: bytes | None
    expected_status: int
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a case did. ``error`` is set when the run itself did not happen or
    did not finish (image does not load, timeout, cannot start); then ``stdout`` and
    ``status`` are meaningless."""

    stdout: bytes
    stderr: bytes
    status: int
    seconds: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judged case: ``message`` is one line (empty on a pass); ``details`` is the
    unified diff and/or stderr tail shown under it."""

    case: Case
    outcome: Outcome
    kind: Kind
    message: str
    details: str


# --- discovery ----------------------------------------------------------------------


def discover(directory: Path) -> list[Case]:
    """The cases in ``directory``, sorted by name (that order is the report's order).

    Raises:
        SuiteError: ``directory`` is missing or not a directory, holds no ``*.img``, a
            sidecar file is unreadable or malformed, or a sidecar names no image.
    """
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise SuiteError(f"test directory {str(directory)!r} {what}")
    try:
        entries = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as err:
        raise SuiteError(f"cannot list {str(directory)!r}: {err.strerror or err}") from err
    names = {p.stem for p in entries if p.suffix == IMAGE_SUFFIX}
    for path in entries:
        if path.suffix in SIDECARS and path.stem not in names:
            raise SuiteError(f"{path.name} has no matching {path.stem}{IMAGE_SUFFIX}")
    if not names:
        raise SuiteError(f"no test cases (*{IMAGE_SUFFIX}) in {str(directory)!r}")
    return [_read_case(directory, name) for name in sorted(names)]


def _read_case(directory: Path, name: str) -> Case:
    expected = _read_optional(directory / f"{name}.expected")
    status_text = _read_optional(directory / f"{name}.status")
    args_text = _read_optional(directory / f"{name}.args")
    status = 0
    if status_text is not None:
        try:
            status = int(status_text.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise SuiteError(f"{name}.status: expected an integer, got {status_text[:40]!r}") from None
        if not 0 <= status <= 255:
            raise SuiteError(f"{name}.status: exit status {status} is not in 0..255")
    args: tuple[str, ...] = ()
    if args_text is not None:
        try:
            args = tuple(shlex.split(args_text.decode("utf-8"), comments=True))
        except (UnicodeDecodeError, ValueError) as err:
            raise SuiteError(f"{name}.args: cannot parse: {err}") from None
    return Case(name, directory / f"{name}{IMAGE_SUFFIX}", expected, status, args)


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise SuiteError(f"cannot read {str(path)!r}: {err.strerror or err}") from err


# --- running --------------------------------------------------------------------------


def run_capsule(case: Case) -> int:
    """A case's job, in its own process (``capsule.cli.forkpool``): ``capsule run IMAGE
    ARGS...``, exactly as the command runs it (it ends with ``SystemExit``)."""
    run.main([str(case.image), *case.args], prog_name="capsule run", standalone_mode=True)


def run_case(case: Case, timeout: float, target: Callable[[Case], int] = run_capsule,
             wall_limit: float | None = None) -> Outcome:
    """Run ``case`` alone (:func:`run_suite` with one case). Never raises for anything
    the case does."""
    outcomes: dict[int, Outcome] = {}
    for index, outcome in _run_all([case], 1, timeout, target, wall_limit, None):
        outcomes[index] = outcome
    return outcomes[0]


def run_suite(cases: Sequence[Case], jobs: int, timeout: float,
              target: Callable[[Case], int] = run_capsule, wall_limit: float | None = None,
              progress: Callable[[int, int, list[str]], None] | None = None,
              ) -> Iterator[Verdict]:
    """Verdicts for ``cases`` in input order, ``jobs`` cases at a time, each in a process
    of its own forked from this one (``capsule.cli.forkpool``: no interpreter start-up per
    case) running ``target(case)``.

    ``timeout`` is the CPU time a case may use (its own: the load on the machine does not
    count), in whole seconds rounded up; ``wall_limit`` (default :data:`WALL_FACTOR`
    times that) is the backstop in wall time. A generator: each verdict is yielded as
    soon as it and all before it are done, so a report can stream while staying
    deterministic. ``progress(done, total, running_names)`` is called as cases start
    and end.
    """
    done: dict[int, Outcome] = {}
    next_index = 0
    for index, outcome in _run_all(cases, jobs, timeout, target, wall_limit, progress):
        done[index] = outcome
        while next_index in done:
            yield judge(cases[next_index], done.pop(next_index))
            next_index += 1


def _run_all(cases: Sequence[Case], jobs: int, timeout: float, target: Callable[[Case], int],
             wall_limit: float | None,
             progress: Callable[[int, int, list[str]], None] | None,
             ) -> Iterator[tuple[int, Outcome]]:
    """``(index, outcome)`` of every case, in the order they end. An image that does not
    load is an error outcome at once, with the loader's message (no process)."""
    runnable: list[int] = []
    for index, case in enumerate(cases):
        try:
            load_image_file(case.image)
        except ImageError as err:
            yield index, Outcome(b"", b"", -1, 0.0, f"image does not load: {err}")
            continue
        runnable.append(index)
    cpu_limit = max(1, math.ceil(timeout))
    wall = WALL_FACTOR * cpu_limit if wall_limit is None else wall_limit
    skipped = len(cases) - len(runnable)

    def report(finished: int, running: list[int]) -> None:
        if progress is not None:
            progress(skipped + finished, len(cases),
                     [cases[runnable[i]].name for i in running])

    jobs_ = [_job(target, cases[index]) for index in runnable]
    for position, finished in run_forked(jobs_, jobs, cpu_limit, wall, report):
        index = runnable[position]
        yield index, _outcome(cases[index], finished, cpu_limit, wall)


def _job(target: Callable[[Case], int], case: Case) -> Callable[[], int]:
    return lambda: target(case)


def _outcome(case: Case, finished: Finished, cpu_limit: int, wall: float) -> Outcome:
    """What a case's process did, as an :class:`Outcome` (errors named, one line)."""
    stdout, stderr, seconds = finished.stdout, finished.stderr, finished.seconds
    if finished.timed_out == "cpu":
        error = f"timed out after {cpu_limit} s of CPU time"
    elif finished.timed_out == "wall":
        error = (f"timed out after {wall:g} s of wall time "
                 f"({finished.cpu_seconds:.1f} s of CPU time)")
    elif finished.status is None:
        name = signal.Signals(finished.signal or 0).name if finished.signal else "a signal"
        error = f"killed by {name}"
    elif finished.status == EXIT_INTERNAL and case.expected_status != EXIT_INTERNAL:
        error = f"capsule internal error (exit status {EXIT_INTERNAL})"
    else:
        return Outcome(stdout, stderr, finished.status, seconds)
    return Outcome(stdout, stderr, -1, seconds, error)


# --- comparison -----------------------------------------------------------------------


def judge(case: Case, outcome: Outcome) -> Verdict:
    """Compare ``outcome`` with ``case``: error if the run did not complete, else fail
    if the status or (when expected) stdout differ, else pass."""
    if outcome.error is not None:
        return Verdict(case, outcome, Kind.ERROR, outcome.error, _stderr_tail(outcome.stderr))
    problems = []
    details = []
    if outcome.status != case.expected_status:
        problems.append(f"exit status {outcome.status}, expected {case.expected_status}")
    if case.expected_stdout is not None and outcome.stdout != case.expected_stdout:
        problems.append("stdout differs from " + f"{case.name}.expected")
        details.append(diff_text(case.expected_stdout, outcome.stdout, case.name))
    if not problems:
        return Verdict(case, outcome, Kind.PASS, "", "")
    details.append(_stderr_tail(outcome.stderr))
    return Verdict(case, outcome, Kind.FAIL, "; ".join(problems), "".join(details))


def diff_text(expected: bytes, actual: bytes, name: str) -> str:
    """A unified diff of expected against actual stdout, as ``diff -u`` would print it
    (including the "No newline at end of file" marker). Undecodable bytes appear as
    ``\\xNN`` escapes."""
    lines = difflib.unified_diff(
        _lines(expected), _lines(actual),
        fromfile=f"{name}.expected", tofile=f"{name} (actual stdout)",
    )
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="backslashreplace").splitlines(keepends=True)


def _stderr_tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", errors="backslashreplace").splitlines()
    if not lines:
        return ""
    shown = lines[-_STDERR_LINES:]
    skipped = f"  ... ({len(lines) - len(shown)} earlier lines)\n" if len(lines) > len(shown) else ""
    return "stderr:\n" + skipped + "".join(f"  {line}\n" for line in shown)


# --- reporting ------------------------------------------------------------------------


def format_report(verdict: Verdict) -> str:
    """The report lines for one verdict: ``PASS NAME``, or ``FAIL NAME: why`` /
    ``ERROR NAME: why`` followed by the details. No timings: reports are deterministic."""
    head = f"{verdict.kind.name} {verdict.case.name}"
    if verdict.kind is Kind.PASS:
        return head + "\n"
    return f"{head}: {verdict.message}\n{verdict.details}"


def summary_line(verdicts: Sequence[Verdict]) -> str:
    """``N passed, M failed`` plus ``, K errors`` when there are any (no newline)."""
    counts = {kind: sum(1 for v in verdicts if v.kind is kind) for kind in Kind}
    line = f"{counts[Kind.PASS]} passed, {counts[Kind.FAIL]} failed"
    if counts[Kind.ERROR]:
        line += f", {counts[Kind.ERROR]} errors"
    return line


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold written as ``\\xNN``."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(verdicts: Sequence[Verdict], suite_name: str) -> bytes:
    """A JUnit XML document: one ``testsuite`` with ``tests``/``failures``/``errors``
    counts and one ``testcase`` per case; a failing case holds a ``failure`` element
    (message attribute, diff in the body), an erroring one an ``error`` element."""
    suite = ET.Element("testsuite", {
        "name": suite_name,
        "tests": str(len(verdicts)),
        "failures": str(sum(v.kind is Kind.FAIL for v in verdicts)),
        "errors": str(sum(v.kind is Kind.ERROR for v in verdicts)),
        "skipped": "0",
        "time": f"{sum(v.outcome.seconds for v in verdicts):.3f}",
    })
    for verdict in verdicts:
        case = ET.SubElement(suite, "testcase", {
            "name": verdict.case.name,
            "classname": suite_name,
            "time": f"{verdict.outcome.seconds:.3f}",
        })
        if verdict.kind is not Kind.PASS:
            tag = "failure" if verdict.kind is Kind.FAIL else "error"
            element = ET.SubElement(case, tag, {"message": _xml_safe(verdict.message)})
            element.text = _xml_safe(verdict.details)
    ET.indent(suite)
    document: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def bless(verdict: Verdict) -> list[Path]:
    """Record ``verdict``'s actual results as the case's expectations (``--update``).

    Writes ``NAME.expected`` when the actual stdout differs from it (or it is absent),
    and ``NAME.status`` when the actual status differs from the expected one (so a case
    that exits 0 needs no status file). Error verdicts are not blessed (there is
    no result to record). Returns the paths written.

    Raises:
        OSError: a file cannot be written.
    """
    if verdict.kind is Kind.ERROR:
        return []
    case = verdict.case
    written = []
    expected = case.image.with_suffix(".expected")
    if case.expected_stdout != verdict.outcome.stdout:
        expected.write_bytes(verdict.outcome.stdout)
        written.append(expected)
    status = case.image.with_suffix(".status")
    if verdict.outcome.status != case.expected_status:
        status.write_text(f"{verdict.outcome.status}\n", encoding="ascii")
        written.append(status)
    return written
