"""``capsule cspace`` run for real, as a subprocess: shipped and freshly built images."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli_run import assert_one_line_error, capsule
from tests.conftest import ARCHES

IMAGES = Path(__file__).resolve().parents[2] / "userland" / "images"
BOOTINFO = str(IMAGES / "bootinfo-riscv64.img")
# userland/tests/retype.c: its first syscall retypes one endpoint into the first slot of
# bootinfo's empty region (right after the last boot cap, an untyped); its 38th makes a
# notification in the slot after that. On riscv64 those are slots 0x41 and 0x42.


def as_json(*args: str) -> dict[str, Any]:
    proc = capsule("cspace", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def root_slots(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {s["index"]: s for s in data["threads"][0]["cspace_root"]["cnode"]["slots"]}


def test_text_of_shipped_bootinfo_image() -> None:
    proc = capsule("cspace", BOOTINFO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# end of run (halt): seL4_DebugHalt")
    assert lines[1].startswith("thread rootserver ") and "state=" in lines[1]
    (root,) = [line for line in lines if "[2] seL4_CapInitThreadCNode:" in line]
    assert "cnode" in root and "radix=12" in root and "guard_size=52" in root
    assert any("[1] seL4_CapInitThreadTCB: thread 0x" in line for line in lines)
    assert not any(re.match(r"\s+\[0\]", line) for line in lines)
    assert "derivation (3 links):" in lines


def test_json_and_dot_agree_on_shipped_image() -> None:
    data = as_json(BOOTINFO)
    slot2 = root_slots(data)[2]
    assert slot2["name"] == "seL4_CapInitThreadCNode" and slot2["cap"]["fields"]["radix"] == 12
    assert slot2["seen"] is True
    dot = capsule("cspace", BOOTINFO, "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph capsule {")
    assert dot.stdout.count("->") == len(data["derivation"]) == 3
    every = as_json(BOOTINFO, "--all-slots")
    assert len(root_slots(every)) == 1 << 12 and root_slots(every)[0]["cap"] is None


@pytest.mark.parametrize("arch", ARCHES)
def test_after_first_retype_an_endpoint_is_a_child_of_the_untyped(
        retype_images: dict[str, str], arch: str) -> None:
    data = as_json(retype_images[arch], "--after-syscall", "1")
    assert data["point"].startswith("after syscall 1 ")
    slots = root_slots(data)
    (ep_index,) = [i for i, s in slots.items() if s["cap"]["type"] == "endpoint"]
    assert ep_index == max(slots) and ep_index - 1 in slots  # first empty-region slot
    endpoint = slots[ep_index]["cap"]
    (parent,) = [link["parent"] for link in data["derivation"]
                 if link["child"] == slots[ep_index]["id"]]
    (untyped,) = [s for s in slots.values() if s["id"] == parent]
    assert untyped["cap"]["type"] == "untyped" and untyped["cap"]["paddr"] == endpoint["paddr"]
    assert not untyped["cap"]["fields"]["is_device"]
    (summary,) = [u for u in data["untypeds"] if u["slot"] == parent]
    assert summary["children"] == 1 and summary["free_bytes"] == (1 << summary["size_bits"]) - 16
    assert {"type": "Endpoint", "paddr": endpoint["paddr"], "size": 16} in data["objects"]


def test_later_syscall_shows_later_state(retype_images: dict[str, str]) -> None:
    # Slot numbers follow the image's size and the untyped list (both come before the
    # empty region), so they are taken from the first retype's result: the endpoint in
    # the first empty slot; 37 syscalls later the program has a notification after it.
    early = root_slots(as_json(retype_images["riscv64"], "--after-syscall", "1"))
    (ep_index,) = [i for i, s in early.items() if s["cap"]["type"] == "endpoint"]
    slots = root_slots(as_json(retype_images["riscv64"], "--after-syscall", "38"))
    assert slots[ep_index + 1]["cap"]["type"] == "notification"
    assert ep_index + 1 not in early
    text = capsule("cspace", retype_images["riscv64"], "--after-syscall", "1").stdout
    assert f"[{ep_index}]: endpoint " in text and f"[{ep_index + 1}]:" not in text


def test_thread_option(retype_images: dict[str, str]) -> None:
    data = as_json(retype_images["riscv64"], "--after-syscall", "1", "--thread", "rootserver")
    assert [t["name"] for t in data["threads"]] == ["rootserver"]


@pytest.mark.parametrize(("args", "fragments"), [
    (["/nonexistent.img"], ["/nonexistent.img"]),
    ([BOOTINFO, "--after-syscall", "0"], ["--after-syscall", "0"]),
    ([BOOTINFO, "--after-syscall", "many"], ["--after-syscall", "many"]),
    ([BOOTINFO, "--after-syscall", "100000"], ["100000", "the run ended"]),
    ([BOOTINFO, "--thread", "nobody"], ["nobody", "rootserver"]),
    ([BOOTINFO, "--format", "xml"], ["xml"]),
])
def test_errors_are_one_line(args: list[str], fragments: list[str]) -> None:
    proc = capsule("cspace", *args)
    assert_one_line_error(proc, *fragments)
    assert proc.stdout == ""


def test_not_an_image(tmp_path: Path) -> None:
    bad = tmp_path / "junk.img"
    bad.write_bytes(b"not an image at all")
    assert_one_line_error(capsule("cspace", str(bad)), "bad image")
