"""The MCS views through the real commands: ``capsule run --trace``, ``capsule cspace``
(text and JSON) and ``capsule debug`` on userland/mcs/mcs_ipc.c and mcs_chain.c built
for MCS.

The point looked at is MCSIPC0002's first Call to its passive server: the root task
unbinds the server's own context (SchedContext_UnbindObject) and calls it, so the server
runs on the root task's context, lent along the Call, and the root task waits on the
server's reply object. Expected values come from what the guest and seL4's boot
configured: the root task's round-robin context is CONFIG_BOOT_THREAD_TIME_SLICE (5 ms),
the server's is configured with 1000 us budget and period (round robin: seL4 keeps a
period equal to the budget as 0); converted at the platform's timer frequency by
``us_to_ticks``. Addresses are read from other parts of the output (the caps) than the
ones under test.

mcs_chain.c lends the root task's context two Calls deep (rootserver -> first ->
second, both servers passive): the chain is looked at while second runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bootimage import build_image
from kernel.abi.arch import Arch, abi_for
from kernel.config import KernelConfig
from kernel.model.mcs_time import us_to_ticks
from tests.cli.test_cli_run import capsule
from tests.conftest import ARCHES
from userland.libsel4.generate import MCS_MACRO
from userland.toolchain import USERLAND, build_program

pytest.importorskip("ziglang")

IPC = USERLAND / "mcs" / "mcs_ipc.c"
CHAIN = USERLAND / "mcs" / "mcs_chain.c"
ROOT_BUDGET_US = 5000
"""seL4's CONFIG_BOOT_THREAD_TIME_SLICE: the root task's context."""
SERVER_BUDGET_US = 1000
"""mcs_ipc.c's thread_with_context: seL4_SchedControl_Configure(..., 1000, 1000, ...)."""
HEX = "0x[0-9a-f]+"


def _images(source: Path, out: Path) -> dict[str, str]:
    paths = {}
    for arch in ARCHES:
        elf = out / f"{source.stem}-{arch}.elf"
        build_program([source], arch, elf, include_dirs=[USERLAND / "tests"],
                      defines=[MCS_MACRO])
        image = out / f"{source.stem}-{arch}.img"
        image.write_bytes(build_image(elf.read_bytes(), KernelConfig(mcs=True)))
        paths[arch] = str(image)
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _images(IPC, tmp_path_factory.mktemp("mcs-views"))


@pytest.fixture(scope="module")
def chain_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _images(CHAIN, tmp_path_factory.mktemp("mcs-chain"))


def _ticks(arch: str, us: int) -> int:
    return us_to_ticks(abi_for(Arch.RISCV64 if arch == "riscv64" else Arch.AARCH64), us)


def _passive_call(trace: str) -> tuple[int, str]:
    """The syscall number of MCSIPC0002's first Call (the first after the unbind) and
    the context the trace says it lent."""
    unbind = re.search(r"^#(\d+) rootserver Call\(.*SchedContextUnbindObject", trace, re.M)
    assert unbind is not None, trace[:3000]
    call = re.search(rf"^#{int(unbind.group(1)) + 1} rootserver Call\(cap={HEX} endpoint, "
                     rf"badge=0x0, label=0x7, mrs=\[0x1\]\) -> to server, waiting for the "
                     rf"reply; sched_context ({HEX}) rootserver -> server \(lent\)$", trace, re.M)
    assert call is not None, trace[unbind.start():][:2000]
    return int(unbind.group(1)) + 1, call.group(1)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_trace_shows_contexts_lent_and_given_back(arch: str,
                                                      images: dict[str, str]) -> None:
    proc = capsule("run", "--trace", images[arch])
    assert proc.returncode == 0, proc.stderr[-2000:]
    trace = proc.stderr
    call, lent = _passive_call(trace)
    # The server's reply gives it back to the caller; no move while the server had its own.
    # The ReplyRecv names its endpoint and the reply object it answers through (a6 / x6)
    # and receives with again, and the caller that reply object held.
    reply_recv = re.search(rf"^#\d+ server ReplyRecv\(cap=({HEX}) endpoint, reply=({HEX}), "
                           r"label=0x[0-9a-f]+, mrs=\[0x[0-9a-f]+\]\) -> replied to "
                           rf"rootserver; sched_context {lent} server -> rootserver$",
                           trace[trace.index(f"#{call} "):], re.M)
    assert reply_recv is not None, trace[trace.index(f"#{call} "):][:2000]
    # The same endpoint and reply object as the Recv the server first waited with.
    assert re.search(rf"^#\d+ server Recv\(cap={reply_recv.group(1)} endpoint, "
                     rf"reply={reply_recv.group(2)}\)", trace, re.M), trace[:3000]
    assert not re.search(rf"^#{call - 2} rootserver Call\(.*sched_context", trace, re.M)
    # A send on a reply object is the reply to the caller it holds (the keeper answers
    # client1, which sent 2, with 12 first; then client0, which sent 1, with 11).
    sends = re.findall(rf"^#\d+ keeper Send\(cap={HEX} reply, Reply, label=0x0, "
                       r"mrs=\[(0x[0-9a-f]+)\]\) -> replied to (\w+)$", trace, re.M)
    assert sorted(sends) == [("0xb", "client0"), ("0xc", "client1")]


@pytest.mark.parametrize("arch", ARCHES)
def test_cspace_shows_the_lent_context_and_its_call_stack(arch: str,
                                                          images: dict[str, str]) -> None:
    call, lent = _passive_call(capsule("run", "--trace", images[arch]).stderr)
    proc = capsule("cspace", images[arch], "--after-syscall", str(call))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    root_sc = re.search(rf"\[14\] seL4_CapInitThreadSC: sched_context ({HEX}) ", text)
    replies = set(re.findall(rf"^\s+(?:{HEX})?\[\d+\]: reply ({HEX}) ", text, re.M))
    assert root_sc is not None and root_sc.group(1) == lent
    assert len(replies) == 1  # the server's, the only reply object made by then
    [reply] = replies
    root_ticks, server_ticks = _ticks(arch, ROOT_BUDGET_US), _ticks(arch, SERVER_BUDGET_US)
    # A round-robin context: what is left of its slice, then what it used of it (the
    # time charged so far, all of it by the root task before the Call).
    root = re.search(rf"^  {lent} size_bits=7 budget={root_ticks} \({ROOT_BUDGET_US}us\) "
                     r"period=0 \(round robin\) refills=\[(\d+)@\d+, (\d+)@\d+\] "
                     r"max_refills=2 consumed=(\d+) \([\d.]+us\) badge=0x0 "
                     r"thread=server \(lent by rootserver\)\n"
                     rf"    call stack: sched_context {lent} -> reply {reply} "
                     r"\(caller rootserver, BlockedOnReply\)$", text, re.M)
    assert root is not None, text
    left, used, consumed = (int(group) for group in root.groups())
    assert left + used == root_ticks and 0 < used == consumed
    # The server's own context, unbound while it is passive (it ran on it until it
    # first waited for a client).
    server = re.search(rf"^  {HEX} size_bits=7 budget={server_ticks} \({SERVER_BUDGET_US}us\) "
                       r"period=0 \(round robin\) refills=\[(\d+)@\d+, (\d+)@\d+\] .* "
                       r"thread=\(none\)$", text, re.M)
    assert server is not None, text
    assert int(server.group(1)) + int(server.group(2)) == server_ticks
    assert re.search(rf"^  {reply} caller=rootserver \(BlockedOnReply\) on the call stack of "
                     rf"sched_context {lent} \(top\)$", text, re.M), text
    assert re.search(rf"^thread rootserver tcb={HEX} state=BlockedOnReply priority=255 "
                     rf"sched_context=none \(lent {lent} along its call\) reply={reply}$",
                     text, re.M), text
    assert re.search(rf"^thread server tcb={HEX} state=Running priority=200 "
                     rf"sched_context={lent} \(lent by rootserver\)$", text, re.M), text


@pytest.mark.parametrize("arch", ARCHES)
def test_cspace_json_has_the_same(arch: str, images: dict[str, str]) -> None:
    call, lent = _passive_call(capsule("run", "--trace", images[arch]).stderr)
    proc = capsule("cspace", images[arch], "--after-syscall", str(call), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    contexts = {sc["paddr"]: sc for sc in data["mcs"]["sched_contexts"]}
    root = contexts[int(lent, 16)]
    assert (root["budget"], root["budget_us"]) == (_ticks(arch, ROOT_BUDGET_US), ROOT_BUDGET_US)
    assert root["thread"] == "server"
    # Round robin: the head is what is left, the tail what was used, the consumed time.
    head, tail = root["refills"]
    assert head["amount"] + tail["amount"] == root["budget"]
    assert 0 < tail["amount"] == root["consumed"]
    assert [(e["caller"], e["caller_state"]) for e in root["call_stack"]] == \
        [("rootserver", "BlockedOnReply")]
    threads = {t["name"]: t["mcs"] for t in data["threads"]}
    assert threads["server"] == {"sched_context": int(lent, 16), "lent_by": "rootserver",
                                 "reply": None, "lent_along": None, "in_release_queue": False}
    assert threads["rootserver"]["lent_along"] == int(lent, 16)
    [reply] = data["mcs"]["replies"]
    assert reply["paddr"] == root["call_stack"][0]["reply"] == threads["rootserver"]["reply"]
    assert reply["next_is_sched_context"] and reply["sched_context"] == int(lent, 16)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_debugger_shows_threads_and_sched(arch: str, images: dict[str, str],
                                              tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text("break label SchedContextUnbindObject\ncontinue\nstep\nthreads\nsched\n"
                      "quit\n")
    proc = capsule("debug", images[arch], "--script", str(script))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    lent = re.search(rf"-> to server, waiting for the reply; sched_context ({HEX}) "
                     r"rootserver -> server \(lent\)$", out, re.M)
    assert lent is not None, out
    sc = lent.group(1)
    assert "  decoded: SchedContextUnbindObject(sc=sched_context@0x" in out
    assert re.search(rf"^\* 1 rootserver .* state=BlockedOnReply .* sched_context=none "
                     rf"\(lent {sc} along its call\) reply=({HEX})$", out, re.M), out
    assert re.search(rf"^  2 server .* state=Running .* \(current\) sched_context={sc} "
                     r"\(lent by rootserver\)$", out, re.M), out
    ticks = _ticks(arch, ROOT_BUDGET_US)
    assert re.search(rf"^  {sc} size_bits=7 budget={ticks} \({ROOT_BUDGET_US}us\) .* "
                     r"thread=server \(lent by rootserver\)$", out, re.M), out
    assert re.search(rf"^    call stack: sched_context {sc} -> reply {HEX} \(caller "
                     r"rootserver, BlockedOnReply\)$", out, re.M), out
    assert "release queue (0):" in out


def test_sched_on_a_non_mcs_kernel_is_one_error_line(tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text("sched\nquit\n")
    image = Path(__file__).resolve().parents[2] / "userland" / "images" / "hello-riscv64.img"
    proc = capsule("debug", str(image), "--script", str(script))
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("error:")] == [
        "error: sched: not an MCS kernel (no scheduling contexts; capsule image build --mcs "
        "makes one)"]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_context_lent_two_calls_deep_shows_its_whole_chain(
        arch: str, chain_images: dict[str, str]) -> None:
    run = capsule("run", "--trace", chain_images[arch])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.endswith("verdict: 2 passed, 0 failed\n"), run.stdout
    trace = run.stderr
    # MCSCHAIN0002's first question (1): first asks second about 2.
    inner = re.search(rf"^#(\d+) first Call\(cap={HEX} endpoint, badge=0x0, label=0x0, "
                      r"mrs=\[0x2\]\) -> to second, waiting for the reply; sched_context "
                      rf"({HEX}) first -> second \(lent\)$", trace, re.M)
    assert inner is not None, trace[-4000:]
    call, sc = int(inner.group(1)), inner.group(2)
    after = trace[inner.end():]
    assert re.search(rf"^#{call + 1} second ReplyRecv\(cap={HEX} endpoint, reply={HEX}, "
                     r"label=0x[0-9a-f]+, mrs=\[0x[0-9a-f]+\]\) -> replied to first; "
                     rf"sched_context {sc} second -> first \(lent\)$", after, re.M), after[:2000]
    assert re.search(rf"^#{call + 2} first ReplyRecv\(cap={HEX} endpoint, reply={HEX}, "
                     r"label=0x[0-9a-f]+, mrs=\[0x[0-9a-f]+\]\) -> replied to rootserver; "
                     rf"sched_context {sc} first -> rootserver$", after, re.M), after[:2000]
    proc = capsule("cspace", chain_images[arch], "--after-syscall", str(call))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    root_sc = re.search(rf"\[14\] seL4_CapInitThreadSC: sched_context ({HEX}) ", text)
    assert root_sc is not None and root_sc.group(1) == sc
    # The reply objects by slot: first_reply was made before second_reply. The root
    # task's Call waits on first's (first received with it), first's Call on second's.
    slots = sorted({(int(n), a) for n, a in re.findall(rf"^\s+\[(\d+)\]: reply ({HEX}) ",
                                                        text, re.M)})
    assert len(slots) == 2, text
    first_reply, second_reply = (address for _, address in slots)
    ticks = _ticks(arch, ROOT_BUDGET_US)
    assert re.search(rf"^  {sc} size_bits=7 budget={ticks} \({ROOT_BUDGET_US}us\) .* "
                     r"thread=second \(lent by rootserver\)\n"
                     rf"    call stack: sched_context {sc} -> reply {second_reply} \(caller "
                     rf"first, BlockedOnReply\) -> reply {first_reply} \(caller rootserver, "
                     r"BlockedOnReply\)$", text, re.M), text
    assert re.search(rf"^  {second_reply} caller=first \(BlockedOnReply\) on the call stack "
                     rf"of sched_context {sc} prev={first_reply} \(top\)$", text, re.M), text
    assert re.search(rf"^  {first_reply} caller=rootserver \(BlockedOnReply\) on the call "
                     rf"stack of sched_context {sc} next={second_reply}$", text, re.M), text
    for name, reply in (("rootserver", first_reply), ("first", second_reply)):
        assert re.search(rf"^thread {name} tcb={HEX} state=BlockedOnReply priority=\d+ "
                         rf"sched_context=none \(lent {sc} along its call\) reply={reply}$",
                         text, re.M), text
    assert re.search(rf"^thread second tcb={HEX} state=Running priority=210 "
                     rf"sched_context={sc} \(lent by rootserver\)$", text, re.M), text
