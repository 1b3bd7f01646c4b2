"""capsule.cli.testrunner on synthetic directories: discovery, comparison, reports, JUnit, bless."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from capsule.cli.testrunner import (
    Case,
    Kind,
    Outcome,
    SuiteError,
    Verdict,
    bless,
    diff_text,
    discover,
    format_report,
    judge,
    junit_xml,
    run_case,
    run_suite,
    summary_line,
)


def write(directory: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        path = directory / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
    return directory


def case(name: str = "c", stdout: bytes | None = b"hi\n", status: int = 0) -> Case:
    return Case(name, Path(f"/nowhere/{name}.img"), stdout, status, ())


def ran(stdout: bytes = b"hi\n", status: int = 0, stderr: bytes = b"",
        error: str | None = None) -> Outcome:
    return Outcome(stdout, stderr, status, 0.5, error)


# --- discovery ------------------------------------------------------------------------


def test_discover_reads_sidecars_and_sorts_by_name(tmp_path: Path) -> None:
    write(tmp_path, {
        "b.img": b"x", "b.expected": b"out\n", "b.status": "3\n",
        "b.args": "--max-instructions 1000  # the guard\n",
        "a.img": b"x", "notes.txt": "ignored",
    })
    (tmp_path / "sub.img").mkdir()  # directories are not cases
    cases = discover(tmp_path)
    assert [c.name for c in cases] == ["a", "b"]
    a, b = cases
    assert (a.expected_stdout, a.expected_status, a.args) == (None, 0, ())
    assert b.image == tmp_path / "b.img"
    assert (b.expected_stdout, b.expected_status) == (b"out\n", 3)
    assert b.args == ("--max-instructions", "1000")


def test_discover_keeps_dotted_names(tmp_path: Path) -> None:
    write(tmp_path, {"v1.2.img": b"x", "v1.2.status": "4"})
    (only,) = discover(tmp_path)
    assert (only.name, only.expected_status) == ("v1.2", 4)


@pytest.mark.parametrize("files, fragment", [
    ({}, "no test cases"),
    ({"readme": "x"}, "no test cases"),
    ({"a.img": b"x", "a.status": "three"}, "a.status: expected an integer"),
    ({"a.img": b"x", "a.status": "256"}, "not in 0..255"),
    ({"a.img": b"x", "a.args": "--x 'unclosed"}, "a.args: cannot parse"),
    ({"a.img": b"x", "b.expected": "y"}, "b.expected has no matching b.img"),
])
def test_discover_rejects_bad_input(tmp_path: Path, files: dict[str, bytes | str],
                                    fragment: str) -> None:
    write(tmp_path, files)
    with pytest.raises(SuiteError, match=fragment):
        discover(tmp_path)


def test_discover_rejects_missing_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="does not exist"):
        discover(tmp_path / "absent")
    write(tmp_path, {"file": "x"})
    with pytest.raises(SuiteError, match="is not a directory"):
        discover(tmp_path / "file")


def test_discover_reports_an_unreadable_sidecar(tmp_path: Path) -> None:
    write(tmp_path, {"a.img": b"x"})
    (tmp_path / "a.expected").mkdir()  # exists, cannot be read as a file
    with pytest.raises(SuiteError, match="cannot read"):
        discover(tmp_path)


# --- comparison -----------------------------------------------------------------------


def test_matching_stdout_and_status_pass() -> None:
    verdict = judge(case(status=3), ran(status=3))
    assert verdict.kind is Kind.PASS
    assert format_report(verdict) == "PASS c\n"


def test_without_expected_file_only_the_status_counts() -> None:
    assert judge(case(stdout=None), ran(stdout=b"anything")).kind is Kind.PASS
    assert judge(case(stdout=None), ran(status=1)).kind is Kind.FAIL


def test_stdout_mismatch_fails_with_a_unified_diff() -> None:
    verdict = judge(case(stdout=b"one\ntwo\n"), ran(stdout=b"one\nTWO\n", stderr=b"capsule: x\n"))
    assert verdict.kind is Kind.FAIL
    assert verdict.message == "stdout differs from c.expected"
    assert "--- c.expected\n+++ c (actual stdout)\n" in verdict.details
    assert "-two\n+TWO\n" in verdict.details
    assert "stderr:\n  capsule: x\n" in verdict.details
    assert format_report(verdict).startswith("FAIL c: stdout differs from c.expected\n---")


def test_status_mismatch_is_reported_with_both_statuses() -> None:
    verdict = judge(case(), ran(status=3))
    assert verdict.kind is Kind.FAIL
    assert verdict.message == "exit status 3, expected 0"
    both = judge(case(), ran(stdout=b"", status=6))
    assert both.message == "exit status 6, expected 0; stdout differs from c.expected"


def test_error_outcome_is_an_error_verdict() -> None:
    verdict = judge(case(), ran(error="timed out after 1 s"))
    assert verdict.kind is Kind.ERROR
    assert format_report(verdict).startswith("ERROR c: timed out after 1 s\n")


def test_diff_marks_missing_final_newline_and_escapes_bad_bytes() -> None:
    text = diff_text(b"a\n", b"a\n\xff", "n")
    assert "+\\xff\n\\ No newline at end of file\n" in text


def test_summary_line_counts_and_mentions_errors_only_when_present() -> None:
    p, f, e = judge(case(), ran()), judge(case(), ran(status=1)), judge(case(), ran(error="x"))
    assert summary_line([p, p, f]) == "2 passed, 1 failed"
    assert summary_line([p, f, e, e]) == "1 passed, 1 failed, 2 errors"
    assert summary_line([]) == "0 passed, 0 failed"


# --- JUnit ----------------------------------------------------------------------------


def test_junit_counts_and_marks_each_case() -> None:
    verdicts = [
        judge(case("good"), ran()),
        judge(case("bad"), ran(stdout=b"bye\x01\n")),
        judge(case("broken"), ran(error="image does not load: wrong magic")),
    ]
    root = ET.fromstring(junit_xml(verdicts, "suite"))
    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    good, bad, broken = root.findall("testcase")
    assert [c.get("name") for c in (good, bad, broken)] == ["good", "bad", "broken"]
    assert list(good) == []
    failure = bad.find("failure")
    assert failure is not None and failure.get("message") == "stdout differs from bad.expected"
    assert failure.text is not None and "+bye\\x01\n" in failure.text  # control char escaped
    error = broken.find("error")
    assert error is not None and "wrong magic" in (error.get("message") or "")


# --- running --------------------------------------------------------------------------


HELLO = Path(__file__).resolve().parents[2] / "userland" / "images" / "hello-riscv64.img"


def test_run_suite_keeps_input_order_whatever_finishes_first() -> None:
    import time

    cases = [Case(f"c{i}", HELLO, b"hi\n", i, ()) for i in range(6)]

    def target(c: Case) -> int:  # in the case's own process
        time.sleep(0.05 * (6 - int(c.name[1:])))  # later cases finish first
        print("hi")
        return c.expected_status

    verdicts = list(run_suite(cases, jobs=6, timeout=5, target=target))
    assert [v.case.name for v in verdicts] == [c.name for c in cases]
    assert all(v.kind is Kind.PASS for v in verdicts), [v.message for v in verdicts]


def test_each_case_runs_in_a_process_of_its_own() -> None:
    """A case cannot see what an earlier one did to the interpreter."""
    import os

    cases = [Case(f"c{i}", HELLO, None, 0, ()) for i in range(3)]
    seen = []

    def target(c: Case) -> int:
        seen.append(c.name)  # in the child's copy only
        print(os.getpid(), len(seen))
        return 0

    outputs = [v.outcome.stdout.split() for v in run_suite(cases, jobs=1, timeout=5, target=target)]
    assert [count for _, count in outputs] == [b"1", b"1", b"1"]
    assert len({pid for pid, _ in outputs} | {str(os.getpid()).encode()}) == 4
    assert seen == []


def test_run_case_bad_image_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"a.img": b"not an image"})
    (c,) = discover(tmp_path)
    outcome = run_case(c, timeout=5)
    assert outcome.error is not None and outcome.error.startswith("image does not load: ")


def test_run_case_counts_cpu_time_not_wall_time() -> None:
    """A case that computes past its CPU time is an error; one that waits is not stopped
    by the CPU limit, only by the wall-clock backstop."""
    import time

    c = Case("slow", HELLO, None, 0, ())

    def spin(_: Case) -> int:
        while True:
            pass

    def sleep(_: Case) -> int:
        time.sleep(30)
        return 0

    assert run_case(c, timeout=0.5, target=spin).error == "timed out after 1 s of CPU time"
    waited = run_case(c, timeout=0.5, target=sleep, wall_limit=1.5)
    assert waited.error is not None
    assert waited.error.startswith("timed out after 1.5 s of wall time (")


def test_a_crashing_or_killed_case_is_an_error_not_a_crash() -> None:
    import os
    import signal

    c = Case("c", HELLO, None, 0, ())

    def crash(_: Case) -> int:
        raise RuntimeError("made up for this test")

    def killed(_: Case) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return 0

    crashed = run_case(c, timeout=5, target=crash)
    assert crashed.error == "capsule internal error (exit status 125)"
    assert b"RuntimeError: made up for this test" in crashed.stderr
    assert run_case(c, timeout=5, target=killed).error == "killed by SIGTERM"


def test_run_case_runs_capsule_run() -> None:
    outcome = run_case(Case("hello", HELLO, None, 0, ("--max-instructions", "10")), timeout=30)
    assert (outcome.status, outcome.error) == (124, None)
    assert outcome.stderr == b"capsule: instruction limit 10 reached\n"
    hello = run_case(Case("hello", HELLO, None, 0, ()), timeout=30)
    assert (hello.status, hello.stdout, hello.stderr) == (0, b"Hello from capsule on riscv64!\n", b"")


# --- bless ----------------------------------------------------------------------------


def test_bless_writes_actual_results_and_skips_errors(tmp_path: Path) -> None:
    write(tmp_path, {"a.img": b"x", "a.expected": "old\n", "b.img": b"x", "e.img": b"x"})
    a, b, e = discover(tmp_path)
    assert bless(judge(a, ran(stdout=b"new\n", status=3))) == [tmp_path / "a.expected",
                                                               tmp_path / "a.status"]
    assert (tmp_path / "a.expected").read_bytes() == b"new\n"
    assert (tmp_path / "a.status").read_text() == "3\n"
    assert bless(judge(b, ran(stdout=b""))) == [tmp_path / "b.expected"]
    assert not (tmp_path / "b.status").exists()  # status 0 is the default
    assert bless(judge(e, ran(error="timed out"))) == []
    assert not (tmp_path / "e.expected").exists()
    again = discover(tmp_path)[0]
    assert bless(Verdict(again, ran(stdout=b"new\n", status=3), Kind.PASS, "", "")) == []
