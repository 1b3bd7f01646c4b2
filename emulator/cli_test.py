"""``capsule test DIR``: run a directory of guest images as a regression suite.

The case format is in ``emulator/TESTFORMAT.md``; the work is done by
:mod:`emulator.testrunner`. This module only parses options and prints.

Output (stdout): one report block per case in name order (``PASS NAME`` or
``FAIL NAME: why`` / ``ERROR NAME: why`` followed by a unified diff and the run's stderr
tail), then the summary line ``N passed, M failed`` (``, K errors`` when there are any).

Exit status: 0 every case passed (with ``--update``: no case had an error), 1 some case
failed or had an error, 2 bad input (DIR missing, no cases, an unreadable or malformed
file, an unwritable ``--junit`` file or expected file) with one line
``capsule: <what is wrong>`` on stderr and never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from .cli_errors import CliError, Command
from .testrunner import (
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
              show_default=True, help="Wall-clock seconds a case may run before it is an error.")
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
    verdicts: list[Verdict] = []
    for verdict in run_suite(cases, jobs or os.cpu_count() or 1, timeout):
        verdicts.append(verdict)
        if update and verdict.kind is not Kind.ERROR:
            try:
                written = bless(verdict)
            except OSError as err:
                raise CliError(f"cannot update {verdict.case.name}: {err.strerror or err}") from None
            names = ", ".join(p.name for p in written) or "unchanged"
            click.echo(f"UPDATED {verdict.case.name}: {names}")
        else:
            click.echo(format_report(verdict), nl=False)
    if update:  # blessed cases now match their expectations
        verdicts = [v if v.kind is Kind.ERROR else _passed(v) for v in verdicts]
    click.echo(summary_line(verdicts))
    if junit_path is not None:
        try:
            junit_path.write_bytes(junit_xml(verdicts, directory.resolve().name or "capsule"))
        except OSError as err:
            raise CliError(f"cannot write {str(junit_path)!r}: {err.strerror or err}") from None
    if any(v.kind is not Kind.PASS for v in verdicts):
        raise SystemExit(EXIT_FAILED)


def _passed(verdict: Verdict) -> Verdict:
    return replace(verdict, kind=Kind.PASS, message="", details="")


test_command.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
