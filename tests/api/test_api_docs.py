"""Every Python example of docs/api.md, run as it is written, on both architectures, in a
directory holding the README walk-through's prog.img and prog.elf. Each block is a whole
script (it imports what it uses) and asserts what the page says happens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ARCHES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_as_written(index: int, arch: str, walkthrough: dict[str, Path],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(walkthrough[arch])
    text = PAGE.read_text()
    before = text[: text.index(BLOCKS[index])].count("\n")
    code = compile("\n" * before + BLOCKS[index], str(PAGE), "exec")  # tracebacks: page lines
    exec(code, {"__name__": f"docs_api_example_{index}"})
