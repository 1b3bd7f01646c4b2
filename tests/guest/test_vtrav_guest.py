"""The server-backed CNodes guest (userland/tests/vtrav.c), on both architectures:
capsule's virtualizable capability-space traversal (not seL4). A client whose whole
CSpace is a CNode bound to a server's endpoint invokes an endpoint the server installs on
demand (then from the cache), sends extra caps found through the server, meets a denial
as seL4's InvalidCapability, fills 10,000 slots on demand, and a looping or silent
server stops neither the kernel nor the other threads (see the C file).

Asserted (invariants checked every 1,000th entry and at the end): every check passes
(tests/guest/checks.py), including the counts of index requests the server saw; the
kernel state at the end (the 10,000-slot node full of notification caps, bound to the
server's endpoint; no request left pending); and without the extension the binding is
refused as seL4 refuses an unknown label.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.session import Session
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.caps import NotificationCap
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.faults import IndexRequest
from kernel.views.invariants import check_all
from tests.cli.test_cli_run import capsule
from tests.conftest import ARCHES, GuestRun
from tests.guest.checks import LINE, assert_all_checks_pass, check_ids_in_source
from userland.build import image_config

EXPECTED = [f"VTRAV{i:04d}" for i in range(1, 6)]


def _run_sampling_invariants(elf: bytes) -> GuestRun:
    """Run the guest with the invariant checks every 1,000th kernel entry and at the end,
    not after every entry as ``run_guest`` does: the 10,000-slot node makes a full check
    cost 10,000 slots, and filling it takes some 50,000 entries. (The unit and property
    tests of the extension check at every exit.)"""
    data = build_image(elf, image_config("vtrav"))
    loaded = load_image(data)
    out = bytearray()
    session = Session.boot(loaded.root, loaded.config, out.append)

    def sample(kernel: Kernel) -> None:
        if kernel.kernel_entries % 1000 == 0:
            check_all(kernel)

    session.kernel.exit_observers.append(sample)
    result = session.run(50_000_000)
    check_all(session.kernel)
    return GuestRun(out.decode(), result, session)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_client_is_served_through_a_server_backed_node(  # type: ignore[no-untyped-def]
        guest_elves, arch: str) -> None:
    run = _run_sampling_invariants(guest_elves[arch]["vtrav"].read_bytes())
    assert run.session.kernel.config.server_backed_cnodes
    assert_all_checks_pass(run, EXPECTED)
    kernel = run.session.kernel
    big = [o for o in kernel.objects.values() if isinstance(o, CNode) and o.radix == 14]
    assert len(big) == 1
    node = big[0]
    assert node.server is not None and isinstance(kernel.objects[node.server.endpoint], Endpoint)
    assert node.server.badge == 0x42
    filled = [s for s in node.slots if isinstance(s.cap, NotificationCap)]
    assert len(filled) == 10_000 and {s.index for s in filled} == set(range(16, 10_016))
    assert all(not isinstance(t.fault, IndexRequest) for t in kernel.threads.values())


@pytest.mark.parametrize("arch", ARCHES)
def test_without_the_extension_the_binding_is_refused_as_seL4_refuses_it(  # type: ignore[no-untyped-def]
        run_guest, arch: str) -> None:
    run = run_guest("vtrav", arch, config=KernelConfig())
    lines = LINE.findall(run.output)
    assert lines[0][:2] == ("VTRAV0001", "FAIL")
    assert "returned IllegalOperation, expected NoError" in lines[0][2]
    assert all(o.server is None for o in run.session.kernel.objects.values()
               if isinstance(o, CNode))


def test_check_ids_are_unique_and_in_order() -> None:
    assert check_ids_in_source("vtrav") == EXPECTED


def test_the_trace_and_the_debugger_show_the_suspended_lookup(  # type: ignore[no-untyped-def]
        guest_elves, tmp_path: Path) -> None:
    image = tmp_path / "vtrav.img"
    image.write_bytes(build_image(guest_elves["riscv64"]["vtrav"].read_bytes(),
                                  image_config("vtrav")))
    script = tmp_path / "script.txt"
    script.write_text("break thread client\ncontinue\nthreads\ncspace\nquit\n")
    proc = capsule("debug", str(image), "--script", str(script))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"client .*state=BlockedOnReply .*\(suspended lookup: index request "
                     r"to the server of CNode 0x[0-9a-f]+: address 0x5, 64 bits left "
                     r"\(lookup kind 0, slot 5\)", out), out
    assert "suspended lookup: index request" in out
    assert re.search(r"\(server-backed: endpoint=0x[0-9a-f]+ badge=0x42\)", out), out
    trace = capsule("run", "--trace", str(image))
    assert "capsule_CNodeBindServer, endpoint=" in trace.stderr + trace.stdout
    assert re.search(r"-- fault client: index request to the server of CNode",
                     trace.stderr + trace.stdout)
    assert "<... capsule_IndexRequest fault resumed> -> restarts at pc" in \
        trace.stderr + trace.stdout
