"""``capsule component`` run for real, as a subprocess, on the component guest.

The file it writes is capsule's own format: the same component the Python API captures
at the same point, and a machine restores the server from that file and its clients go
on being answered. ``--format capdl`` writes the objects, caps and cdt sections. Every
mistake is one line and status 2.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import capsule
from bootimage import build_image
from tests.cli.test_cli_run import assert_one_line_error
from tests.cli.test_cli_run import capsule as capsule_cli
from tests.conftest import ARCHES
from userland.build import image_config


@pytest.fixture(scope="module")
def images(guest_elves: dict[str, dict[str, Path]],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("component")
    paths = {}
    for arch in ARCHES:
        path = out / f"component-{arch}.img"
        path.write_bytes(build_image(guest_elves[arch]["component"].read_bytes(),
                                     image_config("component")))
        paths[arch] = path
    return paths


def _at_capture(image: Path) -> tuple[capsule.Machine, dict[str, tuple[str, int]], int]:
    """A machine stopped where the guest lets the host capture its server, the identity
    map (root-task CPtrs, as the guest publishes them) and the restore untyped's CPtr."""
    machine = capsule.Machine.load(image)
    machine.run(until=capsule.AtAddress(machine.symbol("component_sync")))
    ep, ipc, _, restore_ut = struct.unpack(
        "<4Q", machine.read(machine.symbol("component_info"), 32, "rootserver"))
    external = {"clients_ep": ("rootserver", ep), "ipc_frame": ("rootserver", ipc),
                "root_vspace": ("rootserver", 3)}
    return machine, external, restore_ut


def _options(external: dict[str, tuple[str, int]]) -> list[str]:
    return [arg for name, (thread, cptr) in external.items()
            for arg in ("--external", f"{name}={thread}:{cptr:#x}")]


@pytest.mark.parametrize("arch", ARCHES)
def test_the_file_is_the_component_and_restores(images: dict[str, Path], arch: str,
                                                tmp_path: Path) -> None:
    machine, external, restore_ut = _at_capture(images[arch])
    out = tmp_path / "server.json"
    proc = capsule_cli("component", str(images[arch]), "--thread", "server",
                       "--at", "component_sync", *_options(external), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    from_cli = capsule.component_from_json(out.read_text())
    assert from_cli == machine.capture_component("server", external=external)
    # Restore the server from the file, after the guest destroyed it; the clients go on.
    sync = capsule.AtAddress(machine.symbol("component_sync"))
    machine.run(until=sync)
    machine.restore_component(from_cli, untyped=("rootserver", restore_ut), identities=external)
    machine.write(machine.symbol("host_restored"), struct.pack("<Q", 1), "rootserver")
    end = machine.run()
    assert "client 2: badge 2, call 4\n" in machine.output.decode()
    assert "verdict: 3 passed, 0 failed" in machine.output.decode()
    assert (end.kind, end.status) == (capsule.StopKind.HALT, 0)


def test_capture_in_one_run_restore_in_another(images: dict[str, Path], tmp_path: Path) -> None:
    """The command line alone: capture the server to a file in one run; in another,
    restore it from the file where the guest destroyed it, and run to the end."""
    _, external, restore_ut = _at_capture(images["riscv64"])
    image, saved = str(images["riscv64"]), tmp_path / "server.json"
    proc = capsule_cli("component", image, "--thread", "server", "--at", "component_sync",
                       *_options(external), "-o", str(saved))
    assert proc.returncode == 0, proc.stderr
    identities = [arg.replace("--external", "--identity") for arg in _options(external)]
    restore = ("component", image, "--restore", str(saved), "--at", "component_sync",
               "--hit", "2", "--untyped", f"rootserver:{restore_ut:#x}", *identities)
    proc = capsule_cli(*restore, "--set", "host_restored=1")
    assert proc.returncode == 0, proc.stderr
    for client in (1, 2):
        assert f"client {client}: badge {client}, call 4\n" in proc.stdout
    assert proc.stdout.endswith("verdict: 3 passed, 0 failed\n")
    # Without --set the guest does not know and says so (its status: one check failed).
    proc = capsule_cli(*restore)
    assert proc.returncode == 1 and "no host restored the server" in proc.stdout
    assert_one_line_error(capsule_cli(*restore[:-2]), "cannot restore the component",
                          "does not say which existing object the external 'root_vspace'")
    assert_one_line_error(capsule_cli(*restore[:4], "--untyped", "1", *identities),
                          "--restore needs a point")
    assert_one_line_error(capsule_cli("component", image, "--restore", str(saved), "--at",
                                      "component_sync", "--untyped", "0x7777"),
                          "--untyped 0x7777: cptr 0x7777")


def test_capdl_output_and_determinism(images: dict[str, Path]) -> None:
    _, external, _ = _at_capture(images["riscv64"])
    args = ("component", str(images["riscv64"]), "--thread", "server", "--at", "component_sync",
            *_options(external), "--format", "capdl")
    first, second = capsule_cli(*args), capsule_cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    text = first.stdout
    assert re.search(r"^arch riscv$", text, re.M)
    for section in ("objects {", "caps {", "cdt {"):
        assert re.search(rf"^{re.escape(section)}$", text, re.M), section
    assert re.search(r"^  tcb_0 = tcb \(addr: 0x[0-9a-f]+, ip: 0x[0-9a-f]+, .*prio: 150", text, re.M)
    assert re.search(r"^    0x2: clients_ep \(RW, badge: 0x11\)$", text, re.M)
    assert re.search(r"^    cspace: cnode_1 \(guard: 0x0, guard_size: 60\)$", text, re.M)
    assert re.search(r"^  \(cnode_1, 0x2\) \{\n    \(cnode_1, 0x3\)\n  \}$", text, re.M)
    json_text = capsule_cli(*args[:-2]).stdout
    assert json_text == capsule.component_to_json(capsule.component_from_json(json_text))


def test_mistakes_are_one_line(images: dict[str, Path]) -> None:
    image = str(images["riscv64"])
    at = ("--at", "component_sync")
    assert_one_line_error(capsule_cli("component", image, "--thread", "server", *at),
                          "cannot capture the component of thread 'server'",
                          "cap outside the component")
    assert_one_line_error(capsule_cli("component", image, "--thread", "nobody", *at),
                          "--thread: no thread 'nobody'")
    assert_one_line_error(capsule_cli("component", image, "--thread", "server",
                                      "--at", "no_such_symbol"), "no symbol 'no_such_symbol'")
    assert_one_line_error(capsule_cli("component", image, "--thread", "server", *at,
                                      "--after-syscall", "3"), "give one")
    assert_one_line_error(capsule_cli("component", image, "--thread", "server", *at,
                                      "--external", "ep"), "expected NAME=[THREAD:]CPTR")
    assert_one_line_error(capsule_cli("component", image, "--thread", "server", *at,
                                      "--external", "ep=0x7777"), "--external ep: 0x7777: cptr 0x7777")
    assert_one_line_error(capsule_cli("component", image, *at), "--thread: say whose")
    assert_one_line_error(capsule_cli("component", image, "--thread", "server", *at,
                                      "--after-syscall", "x"), "not a number")
