"""The commands that show a CSpace, run for real on a guest whose CSpace is a chain of
1,200 CNodes (userland/tests/deepcspace.c): ``capsule cspace`` in its three forms, the
debugger's ``cspace`` command, and the trace. They used to die of RecursionError at about
500 levels; each must now exit 0 with no traceback and show the deepest CNode.

Where the deepest CNode is, and at which level, comes from an in-process run of the same
image (runs are deterministic): the chain's last CNode sits in slot 0 of the one before,
at level CHAIN of the root thread's tree (the root CNode's slots are level 1).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bootimage import build_image
from kernel.views.json_form import MAX_INDENT_LEVELS
from kernel.views.render import TEXT_INDENT_LEVELS
from tests.cli.test_cli_run import capsule
from tests.conftest import ARCHES
from tests.guest.test_deep_guests import CHAIN, PROGRAM, longest_chain, run_deep
from userland.build import image_config


@dataclass(frozen=True)
class DeepImage:
    path: str
    chain: list[int]
    """Paddrs of the chain's CNodes, outermost first."""

    @property
    def text_line(self) -> str:
        """The text form's line for the cap to the deepest CNode."""
        pad = "  " * (1 + TEXT_INDENT_LEVELS)
        return f"{pad}(level {CHAIN}) [0]: cnode {self.chain[-1]:#x} radix=1 guard_size=0 guard=0x0"


@pytest.fixture(scope="module")
def deep_images(guest_elves: dict[str, dict[str, Path]],
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, DeepImage]:
    out = tmp_path_factory.mktemp("deep")
    images = {}
    for arch in ARCHES:
        elf = guest_elves[arch][PROGRAM]
        path = out / f"{PROGRAM}-{arch}.img"
        path.write_bytes(build_image(elf.read_bytes(), image_config(PROGRAM)))
        chain = longest_chain(run_deep(elf).session.kernel)
        assert len(chain) == CHAIN
        images[arch] = DeepImage(str(path), chain)
    return images


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_text_shows_the_deepest_cnode(deep_images: dict[str, DeepImage], arch: str) -> None:
    image = deep_images[arch]
    proc = capsule("cspace", image.path)
    assert_clean(proc)
    lines = proc.stdout.splitlines()
    assert image.text_line in lines
    assert len(lines) < 20 * CHAIN  # a line a slot, not one per level of indentation


def test_json_shows_the_deepest_cnode(deep_images: dict[str, DeepImage]) -> None:
    image = deep_images["riscv64"]
    proc = capsule("cspace", image.path, "--format", "json")
    assert_clean(proc)
    # The deepest CNode's view, indented as deep as the JSON form indents.
    pad = " " * MAX_INDENT_LEVELS
    view = (f'{pad}"cnode": {{\n{pad}"paddr": {image.chain[-1]},\n{pad}"radix": 1,\n'
            f'{pad}"slots": []\n')
    assert view in proc.stdout


def test_dot_shows_the_deepest_cnode(deep_images: dict[str, DeepImage]) -> None:
    image = deep_images["riscv64"]
    proc = capsule("cspace", image.path, "--format", "dot")
    assert_clean(proc)
    assert f'"{image.chain[-2]:#x}[0]" [label="[0] cnode {image.chain[-1]:#x} radix=1 ' \
        in proc.stdout


def test_the_debugger_cspace_command_shows_the_deepest_cnode(
        deep_images: dict[str, DeepImage], tmp_path: Path) -> None:
    image = deep_images["riscv64"]
    script = tmp_path / "script.txt"
    script.write_text("continue\ncspace\n")
    proc = capsule("debug", image.path, "--script", str(script))
    assert_clean(proc)
    lines = proc.stdout.splitlines()
    assert "run ended: halt (status 0): seL4_DebugHalt" in lines
    assert image.text_line in lines


def test_the_trace_runs_to_the_end(deep_images: dict[str, DeepImage]) -> None:
    proc = capsule("run", "--trace", deep_images["riscv64"].path)
    assert_clean(proc)
    assert "verdict: 3 passed, 0 failed" in proc.stdout
