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


@pytest.mark.parametrize("arch", ARCHES)
def test_trace_json_shows_the_record_the_kernel_decoded(retype_images: dict[str, str],
                                                          arch: str) -> None:
    """The first syscall of the retype guest is a Retype into one slot of the root CNode:
    the decoded record names that very slot (the offset the caller asked for), the object
    type and the untyped it came from; refused invocations and other syscalls have none."""
    proc = capsule("run", "--trace-json", retype_images[arch])
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    first = records[0]
    assert first["label"] == "UntypedRetype" and first["result"] == "seL4_NoError"
    decoded = first["decoded"]
    assert decoded.startswith("RetypeInvocation(")
    assert "untyped_slot=" in decoded and f"[{first['cptr']}]" in decoded
    assert "dest_slots=[0x" in decoded and decoded.count("[") >= 2
    assert f"[{first['args']['node_offset']}]]" in decoded
    assert "otype=seL4_EndpointObject" in decoded
    assert all(r["decoded"] is None for r in records if r["result"] not in ("seL4_NoError",)
               and r["label"] is not None and r["syscall"] == "Call")
    assert all(r["decoded"] is None for r in records if r["syscall"].startswith("Debug"))


def test_trace_json_of_hello() -> None:
    proc = capsule("run", "--arch", "riscv64", "--trace-json")
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [r["syscall"] for r in records[:2]] == ["DebugPutChar", "DebugPutChar"]
    assert records[0]["mrs"] == [ord("H")] and records[0]["number"] == -9
    assert records[-1]["syscall"] == "DebugHalt" and records[-1]["result"] == "halt(0)"
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))


# --- endpoint IPC ----------------------------------------------------------------------------


def _echo(v: int, i: int) -> int:
    """userland/tests/ipc_callreply.c's echo server: MR i comes back as MR i * 3 + i."""
    return v * 3 + i


def _word(rnd: int, i: int) -> int:
    """ipc_callreply.c's round_word: what the client sends as MR i in round ``rnd``."""
    return 0x1000000 * (rnd + 1) + 0x10001 * i


def _mrs(words: list[int]) -> str:
    return ", mrs=[" + ", ".join(f"{w:#x}" for w in words) + "]" if words else ""


def expected_call_reply_trace(ep: int) -> list[str]:
    """IPC0001's first four rounds (labels 1-4, lengths 0, 1, 4, 5) as the trace shows
    them: the first Call blocks (the server has not run yet: it is queued behind the
    root task at the same priority); the server's Recv then takes it; every later
    Call finds the server waiting and goes to it, and every ReplyRecv answers the root
    task and blocks for the next request."""
    cap = f"cap={ep:#x} endpoint_cap"
    rounds = [(1, 0), (2, 1), (3, 4), (4, 5)]
    lines = []
    for rnd, (label, length) in enumerate(rounds):
        sent = [_word(rnd, i) for i in range(length)]
        # The trace shows the words the message carries: the register MRs always, the
        # rest from the IPC buffer.
        result = "blocked" if rnd == 0 else "to echo, waiting for the reply"
        lines.append(f"rootserver Call({cap}, badge=0x0, label={label:#x}{_mrs(sent)})"
                     f" -> {result}")
        if rnd == 0:
            lines.append(f"echo Recv({cap}) -> badge=0x0 label={label:#x} length={length}")
        reply = [_echo(w, i) for i, w in enumerate(sent)]
        lines.append(f"echo ReplyRecv({cap}, label={label + 1:#x}{_mrs(reply)})"
                     " -> replied to rootserver, blocked")
    return lines


@pytest.mark.parametrize("arch", ARCHES)
def test_trace_of_call_and_reply_recv(arch: str, guest_elves, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bootimage import build_image
    from kernel.config import KernelConfig

    image = tmp_path / "ipc_callreply.img"
    image.write_bytes(build_image(guest_elves[arch]["ipc_callreply"].read_bytes(),
                                  KernelConfig()))
    proc = capsule("run", "--trace", str(image))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split(" ", 1)[1] for line in proc.stderr.splitlines()]
    # The endpoint is the first object the program retypes: its slot is the destination
    # offset of the first UntypedRetype.
    first_retype = next(line for line in lines if "UntypedRetype" in line)
    ep = int(first_retype.split("node_offset=")[1].split(",")[0], 16)
    ipc = [line for line in lines if "endpoint_cap" in line]
    assert ipc[:9] == expected_call_reply_trace(ep)
