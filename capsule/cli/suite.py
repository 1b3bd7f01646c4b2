"""``capsule test DIR``: run a directory of guest images as a regression suite.

The case format is in ``capsule/cli/TESTFORMAT.md``; the work is done by
:mod:`capsule.cli.testrunner`. This module only parses options and prints.

Output (stdout): one report block per case in name order (``PASS NAME`` or
``FAIL NAME: why`` / ``ERROR NAME: why`` followed by a unified diff and the run's stderr
tail), then the summary line ``N passed, M failed`` (``, K errors`` when there are any).

On a terminal, stderr also shows a progress line while cases run (how many are done,
which are running), rewritten in place and cleared before each report block.

Exit status: 0 every case passed (with ``--update``: no case had an error), 1 some case
failed or had an error, 2 bad input (DIR missing, no cases, an unreadable or malformed
file, an unwritable ``--junit`` file or expected file: the ``--junit`` path is checked
before any case runs) with one line ``capsule: <what is wrong>`` on stderr and never a
traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import click

from .errors import CliError, Command
from .testrunner import (
    WALL_FACTOR,
    Kind,
    SuiteError,
    Verdict,
    bless,
    discover,
    format_report,
    junit_xml,
    run_suite,
    summary_line,
)

__all__ = ["test_command"]

EXIT_FAILED = 1


@click.command("test", cls=Command)
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Cases run at once, each in its own process [default: CPU count].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True,
              help="CPU seconds a case may use before it is an error (its own CPU time, "
                   "so a loaded machine does not matter; whole seconds, rounded up). "
                   f"Wall time is capped at {WALL_FACTOR} times that.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), default=None,
              help="Also write the results as JUnit XML to this file.")
@click.option("--update", is_flag=True,
              help="Bless: write each case's actual stdout and status as its expectations.")
def test_command(directory: Path, jobs: int | None, timeout: float, junit_path: Path | None,
                 update: bool) -> None:
    """Run every DIR/NAME.img and compare with NAME.expected / NAME.status."""
    try:
        cases = discover(directory)
    except SuiteError as err:
        raise CliError(str(err)) from None
    junit = _ReportFile(junit_path) if junit_path is not None else None
    progress = _Progress() if sys.stderr.isatty() else None
    try:
        verdicts: list[Verdict] = []
        for verdict in run_suite(cases, jobs or os.cpu_count() or 1, timeout,
                                 progress=progress.show if progress else None):
            if progress is not None:
                progress.clear()
            verdicts.append(verdict)
            if update and verdict.kind is not Kind.ERROR:
                try:
                    written = bless(verdict)
                except OSError as err:
                    raise CliError(f"cannot update {verdict.case.name}: "
                                   f"{err.strerror or err}") from None
                names = ", ".join(p.name for p in written) or "unchanged"
                click.echo(f"UPDATED {verdict.case.name}: {names}")
            else:
                click.echo(format_report(verdict), nl=False)
        if progress is not None:
            progress.clear()
        if update:  # blessed cases now match their expectations
            verdicts = [v if v.kind is Kind.ERROR else _passed(v) for v in verdicts]
        click.echo(summary_line(verdicts))
        if junit is not None:
            junit.commit(junit_xml(verdicts, directory.resolve().name or "capsule"))
    finally:
        if junit is not None:
            junit.discard()
    if any(v.kind is not Kind.PASS for v in verdicts):
        raise SystemExit(EXIT_FAILED)


class _ReportFile:
    """A report file checked before the run: a temporary file is created next to it at
    once (so an unwritable path is bad input before any case runs) and renamed over it
    at the end, so the report is whole or absent, never half-written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise CliError(f"cannot write {str(path)!r}: Is a directory")
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            self.tmp.open("xb").close()
        except OSError as err:
            raise CliError(f"cannot write {str(path)!r}: {err.strerror or err}") from None

    def commit(self, data: bytes) -> None:
        try:
            self.tmp.write_bytes(data)
            os.replace(self.tmp, self.path)
        except OSError as err:
            raise CliError(f"cannot write {str(self.path)!r}: {err.strerror or err}") from None

    def discard(self) -> None:
        """Remove the temporary file if it is still there (no-op after :meth:`commit`)."""
        try:
            self.tmp.unlink()
        except OSError:
            pass


class _Progress:
    """One line on a terminal's stderr while cases run, rewritten in place:
    ``capsule test: 12/40 done, running a, b``; cleared before each report line."""

    def __init__(self) -> None:
        self.shown = False

    def show(self, done: int, total: int, running: list[str]) -> None:
        width = shutil.get_terminal_size().columns - 1
        line = f"capsule test: {done}/{total} done"
        if running:
            line += ", running " + ", ".join(running)
        click.echo("\r\033[K" + line[:width], nl=False, err=True)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\033[K", nl=False, err=True)
            self.shown = False


def _passed(verdict: Verdict) -> Verdict:
    return replace(verdict, kind=Kind.PASS, message="", details="")


test_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
