"""``capsule cspace`` run for real, as a subprocess: shipped and freshly built images."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bootimage import build_image, load_image_file
from emulator.session import Session
from kernel.bootinfo import BootInfo
from kernel.config import KernelConfig
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


def boot_regions(image: str) -> BootInfo:
    """What boot tells the root task of ``image`` (seL4_BootInfo's slot regions)."""
    loaded = load_image_file(image)
    return Session.boot(loaded.root, loaded.config, lambda byte: None).report.bootinfo


def size(region: tuple[int, int]) -> int:
    return region[1] - region[0]


def test_text_of_shipped_bootinfo_image() -> None:
    proc = capsule("cspace", BOOTINFO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# end of run (halt): seL4_DebugHalt")
    # The bootinfo guest retypes nothing: boot's image caps and every untyped are hidden.
    info = boot_regions(BOOTINFO)
    assert lines[1] == (f"# hidden: {size(info.user_image_frames)} image frame caps, "
                        f"{size(info.user_image_paging)} image page-table caps, "
                        f"{size(info.extra_pages)} extra bootinfo frame caps, "
                        f"{size(info.untyped)} unused untyped caps")
    assert lines[2].startswith("thread rootserver ") and "state=" in lines[2]
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
    edges = [line for line in dot.stdout.splitlines() if "->" in line and "invis" not in line]
    assert len(edges) == len(data["derivation"]) == 3
    every = as_json(BOOTINFO, "--all-slots", "--all-caps")
    assert len(root_slots(every)) == 1 << 12 and root_slots(every)[0]["cap"] is None
    # Without --all-caps, the slots of the caps boot made for the image and the unused
    # untypeds are left out of the tree, empty or not.
    some = as_json(BOOTINFO, "--all-slots")
    assert len(root_slots(some)) == (1 << 12) - sum(some["hidden"].values())


@pytest.mark.parametrize("arch", ARCHES)
def test_after_first_retype_an_endpoint_is_a_child_of_the_untyped(
        retype_images: dict[str, str], arch: str) -> None:
    data = as_json(retype_images[arch], "--after-syscall", "1")
    assert data["point"].startswith("after syscall 1 ")
    slots = root_slots(data)
    (ep_index,) = [i for i, s in slots.items() if s["cap"]["type"] == "endpoint"]
    assert ep_index == max(slots)  # the first empty-region slot, after every boot cap
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


@pytest.mark.parametrize("arch", ARCHES)
def test_all_caps_shows_what_the_default_hides(retype_images: dict[str, str], arch: str) -> None:
    """After the retype guest's first syscall (one endpoint from one untyped): the default
    leaves out boot's image frame and page-table caps, the extra bootinfo frame caps and
    every untyped but that one, in
    the slots seL4_BootInfo gives; --all-caps shows all of them."""
    image = retype_images[arch]
    info = boot_regions(image)
    default = as_json(image, "--after-syscall", "1")
    every = as_json(image, "--after-syscall", "1", "--all-caps")
    assert default["hidden"] == {"image frame caps": size(info.user_image_frames),
                                 "image page-table caps": size(info.user_image_paging),
                                 "extra bootinfo frame caps": size(info.extra_pages),
                                 "unused untyped caps": size(info.untyped) - 1}
    assert every["hidden"] == {}
    shown, all_slots = root_slots(default), root_slots(every)
    boot_made = set(range(*info.user_image_frames)) | set(range(*info.user_image_paging)) \
        | set(range(*info.extra_pages)) | set(range(*info.untyped))
    assert boot_made <= set(all_slots)
    (used,) = boot_made & set(shown)
    assert shown[used]["cap"]["type"] == "untyped"
    assert set(all_slots) - set(shown) == boot_made - {used}
    assert len(every["caps"]) - len(default["caps"]) == sum(default["hidden"].values())
    assert not [u for u in default["untypeds"] if u["slot"] != shown[used]["id"]]
    frames = {o["paddr"] for o in default["objects"] if o["type"] == "Frame"}
    assert frames == {c["paddr"] for c in default["caps"].values() if c["type"] == "frame"}


def test_hide_types(retype_images: dict[str, str]) -> None:
    data = as_json(retype_images["riscv64"], "--after-syscall", "1", "--hide", "endpoint",
                   "--hide", "frame,untyped_cap")
    assert not [c for c in data["caps"].values() if c["type"] in ("endpoint", "frame", "untyped")]
    assert data["hidden"]["endpoint caps"] == 1  # the one endpoint the first syscall made
    assert_one_line_error(capsule("cspace", BOOTINFO, "--hide", "frame,gizmo"), "gizmo",
                          "endpoint")


@pytest.mark.parametrize("arch", ARCHES)
def test_subtree_of_a_slot_and_of_an_object(retype_images: dict[str, str], arch: str) -> None:
    """The untyped the first retype used: its subtree is it and the endpoint; the
    endpoint's address (also the untyped's: it was carved from the start) names the
    endpoint, whose subtree is itself."""
    image = retype_images[arch]
    full = as_json(image, "--after-syscall", "1")
    (endpoint_id,) = [sid for sid, c in full["caps"].items() if c["type"] == "endpoint"]
    (untyped_id,) = [link["parent"] for link in full["derivation"]
                     if link["child"] == endpoint_id]
    data = as_json(image, "--after-syscall", "1", "--subtree", untyped_id)
    assert set(data["caps"]) == {untyped_id, endpoint_id}
    assert data["derivation"] == [{"parent": untyped_id, "child": endpoint_id}]
    (thread,) = data["threads"]  # the path to them in the root server's CSpace
    assert {s["id"] for s in thread["cspace_root"]["cnode"]["slots"]} == {untyped_id, endpoint_id}
    paddr = full["caps"][endpoint_id]["paddr"]
    assert full["caps"][untyped_id]["paddr"] == paddr
    data = as_json(image, "--after-syscall", "1", "--subtree", f"{paddr:#x}")
    assert set(data["caps"]) == {endpoint_id} and data["derivation"] == []
    assert [o["type"] for o in data["objects"]] == ["Endpoint"]
    text = capsule("cspace", image, "--after-syscall", "1", "--subtree", untyped_id).stdout
    assert f"{untyped_id}: untyped " in text and f"  {endpoint_id}: endpoint " in text


@pytest.fixture(scope="module")
def callreply_image(guest_elves: dict[str, dict[str, Path]],
                    tmp_path_factory: pytest.TempPathFactory) -> str:
    """userland/tests/ipc_callreply.c: two of its tests each make a thread "echo"."""
    path = tmp_path_factory.mktemp("callreply") / "ipc_callreply.img"
    path.write_bytes(build_image(guest_elves["riscv64"]["ipc_callreply"].read_bytes(),
                                 KernelConfig()))
    return str(path)


def test_threads_are_named_in_caps_and_pictures(callreply_image: str) -> None:
    data = as_json(callreply_image)
    echo = [t for t in data["threads"] if t["name"] == "echo"]
    assert len(echo) == 2  # ipc_callreply.c makes thread 0 "echo" twice
    caps = [c for c in data["caps"].values() if c["type"] == "thread"]
    assert {c["paddr"] for c in caps if c["fields"]["name"] == "echo"} == {t["paddr"] for t in echo}
    text = capsule("cspace", callreply_image).stdout
    assert f"thread {echo[0]['paddr']:#x} name=echo" in text
    assert f"{echo[0]['paddr']:#x}.ctable (echo): cnode " in text
    dot = capsule("cspace", callreply_image, "--format", "dot").stdout
    assert f'label="TCB echo {echo[1]["paddr"]:#x}";' in dot


def test_a_shared_thread_name_is_an_error_listing_the_threads(callreply_image: str) -> None:
    echo = [t["paddr"] for t in as_json(callreply_image)["threads"] if t["name"] == "echo"]
    proc = capsule("cspace", callreply_image, "--thread", "echo")
    assert_one_line_error(proc, "2 threads are named 'echo'", f"echo#1 (tcb {echo[0]:#x})",
                          f"echo#2 (tcb {echo[1]:#x})")
    for spec, paddr in (("echo#2", echo[1]), (f"{echo[0]:#x}", echo[0])):
        data = as_json(callreply_image, "--thread", spec)
        assert [t["paddr"] for t in data["threads"]] == [paddr]
    assert_one_line_error(capsule("cspace", callreply_image, "--thread", "echo#3"),
                          "2 threads named 'echo'")


def test_one_threads_cspace_is_its_tree_and_its_tcb(callreply_image: str) -> None:
    full = as_json(callreply_image, "--all-caps")
    echo = next(t for t in full["threads"] if t["name"] == "echo")
    data = as_json(callreply_image, "--thread", f"{echo['paddr']:#x}", "--all-caps")
    tree, pending = set(), [data["threads"][0]["cspace_root"]]
    while pending:
        slot = pending.pop()
        tree.add(slot["id"])
        pending.extend(slot["cnode"]["slots"] if slot["cnode"] else [])
    own = {sid for sid in full["caps"] if sid.startswith(f"{echo['paddr']:#x}.")}
    assert set(data["caps"]) == (tree | own) & set(full["caps"])
    assert own <= set(data["caps"])
    assert all(link["parent"] in data["caps"] and link["child"] in data["caps"]
               for link in data["derivation"])
    other = next(t for t in full["threads"] if t["name"] == "nobuf")
    assert not [sid for sid in data["caps"] if sid.startswith(f"{other['paddr']:#x}.")]


@pytest.mark.parametrize(("args", "fragments"), [
    (["/nonexistent.img"], ["/nonexistent.img"]),
    ([BOOTINFO, "--after-syscall", "0"], ["--after-syscall", "0"]),
    ([BOOTINFO, "--after-syscall", "many"], ["--after-syscall", "many"]),
    ([BOOTINFO, "--after-syscall", "100000"], ["100000", "the run ended"]),
    ([BOOTINFO, "--thread", "nobody"], ["nobody", "rootserver"]),
    ([BOOTINFO, "--subtree", "junk"], ["--subtree", "junk"]),
    ([BOOTINFO, "--subtree", "0x1"], ["--subtree", "no cap refers to an object at 0x1"]),
    ([BOOTINFO, "--subtree", "0x1[3]"], ["--subtree", "slot 0x1[3] holds no cap"]),
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
