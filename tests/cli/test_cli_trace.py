"""``capsule run --trace`` / ``--trace-json`` on a known guest: the exact expected lines."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli_run import capsule
from tests.conftest import ARCHES


def expected_hello_trace(arch: str) -> list[str]:
    text = f"Hello from capsule on {arch}!\n"
    lines = [f"#{i} rootserver DebugPutChar({ch!r})" for i, ch in enumerate(text, start=1)]
    lines.append(f"#{len(text) + 1} rootserver DebugHalt() -> halt(0)")
    return lines


@pytest.mark.parametrize("arch", ARCHES)
def test_trace_of_hello(arch: str) -> None:
    proc = capsule("run", "--arch", arch, "--trace")
    assert proc.returncode == 0
    assert proc.stdout == f"Hello from capsule on {arch}!\n"
    assert proc.stderr.splitlines() == expected_hello_trace(arch)


def test_trace_json_of_hello() -> None:
    proc = capsule("run", "--arch", "riscv64", "--trace-json")
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [r["syscall"] for r in records[:2]] == ["DebugPutChar", "DebugPutChar"]
    assert records[0]["mrs"] == [ord("H")] and records[0]["number"] == -9
    assert records[-1]["syscall"] == "DebugHalt" and records[-1]["result"] == "halt(0)"
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
