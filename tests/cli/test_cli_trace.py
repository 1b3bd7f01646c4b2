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
    cap = f"cap={ep:#x} endpoint"
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
    ipc = [line for line in lines if "(cap=0x" in line and " endpoint" in line]
    assert ipc[:9] == expected_call_reply_trace(ep)


# --- events: completions, faults, switches; filters; where the trace goes ---------------------


@pytest.fixture(scope="module")
def images(guest_elves, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    from bootimage import build_image
    from kernel.config import KernelConfig

    out = tmp_path_factory.mktemp("traced")
    paths = {}
    for arch in ARCHES:
        for name in ("ipc_callreply", "ipc_faults"):
            path = out / f"{name}-{arch}.img"
            path.write_bytes(build_image(guest_elves[arch][name].read_bytes(), KernelConfig()))
            paths[(name, arch)] = str(path)
    return paths


def symbols(elf_path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in table.iter_symbols()}  # type: ignore[union-attr]


def test_filters_by_syscall_thread_and_event() -> None:
    """hello prints its line one DebugPutChar at a time, then halts: one syscall per
    character, then DebugHalt."""
    text = "Hello from capsule on riscv64!\n"
    halt = f"#{len(text) + 1} rootserver DebugHalt() -> halt(0)"
    proc = capsule("run", "--trace-filter", "syscall!=DebugPutChar")
    assert proc.returncode == 0 and proc.stdout == text
    assert proc.stderr.splitlines() == [halt]
    proc = capsule("run", "--trace", "--trace-filter", "syscall=DebugPutChar,DebugHalt",
                   "--trace-filter", "thread=rootserver", "--trace-filter", "event=syscall")
    assert proc.stderr.splitlines() == expected_hello_trace("riscv64")
    proc = capsule("run", "--trace-filter", "thread=nobody")
    assert proc.returncode == 0 and proc.stderr == ""
    proc = capsule("run", "--trace-json", "--trace-filter", "syscall=DebugHalt")
    (record,) = [json.loads(line) for line in proc.stderr.splitlines()]
    assert record["kind"] == "syscall" and record["seq"] == len(text) + 1


@pytest.mark.parametrize(("spec", "fragments"), [
    ("syscall=DebugPutChr", ["no syscall named 'DebugPutChr'", "did you mean DebugPutChar"]),
    ("label=UntypedRetyp", ["did you mean UntypedRetype"]),
    ("colour=red", ["KEY one of syscall, label, thread, type, event"]),
    ("type=", ["no value"]),
    ("event=signal", ["no event named 'signal'"]),
])
def test_bad_filters_are_one_line_errors(spec: str, fragments: list[str]) -> None:
    from tests.cli.test_cli_run import assert_one_line_error

    proc = capsule("run", "--trace-filter", spec)
    assert_one_line_error(proc, "--trace-filter", *fragments)
    assert proc.stdout == ""


def test_trace_and_trace_json_together_are_a_usage_error() -> None:
    from tests.cli.test_cli_run import assert_one_line_error

    proc = capsule("run", "--trace", "--trace-json")
    assert_one_line_error(proc, "--trace and --trace-json: choose one")
    assert proc.stdout == ""


def test_trace_file_keeps_stderr_free(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "trace.txt"
    proc = capsule("run", "--trace-file", str(out))
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == "Hello from capsule on riscv64!\n"
    assert out.read_text().splitlines() == expected_hello_trace("riscv64")


def test_rights_are_named_as_the_cspace_view_names_them(images) -> None:  # type: ignore[no-untyped-def]
    """ipc_faults.c mints the badged fault endpoint cap with seL4_AllRights (write, read,
    grant, grant-reply: WRGg, as kernel.model.caps.Rights writes them)."""
    from kernel.model.caps import ALL_RIGHTS

    proc = capsule("run", "--trace-filter", "label=CNodeMint", images[("ipc_faults", "riscv64")])
    mints = [line for line in proc.stderr.splitlines() if "badge=0xfa" in line]
    assert mints and all(f"rights={ALL_RIGHTS}," in line for line in mints)
    assert str(ALL_RIGHTS) == "WRGg"
    # The JSON form keeps the values the guest passed (and the cap's tag).
    records = [json.loads(line) for line in capsule(
        "run", "--trace-json", "--trace-filter", "label=CNodeMint",
        images[("ipc_faults", "riscv64")]).stderr.splitlines()]
    badged = [r for r in records if r["args"]["badge"] == 0xFA]
    assert badged and all(r["args"]["rights"] == ALL_RIGHTS.to_word() for r in badged)
    assert {r["cap"] for r in records} == {"cnode_cap"}


def _blocked_seq(lines: list[str], thread: str, before: int) -> str:
    """The ``#seq`` of ``thread``'s last syscall line before ``lines[before]`` that left
    it blocked (waiting for a message or a reply)."""
    for line in reversed(lines[:before]):
        seq, name = line.split(" ", 2)[:2]
        if name == thread and seq.startswith("#") and "<..." not in line and (
                line.endswith("blocked") or line.endswith("waiting for the reply")):
            return seq
    raise AssertionError(f"no blocked call of {thread} before line {before}")


@pytest.mark.parametrize("arch", ARCHES)
def test_blocked_calls_get_a_completion_line(images, arch: str) -> None:  # type: ignore[no-untyped-def]
    """IPC0001's rounds (ipc_callreply.c): each Call of the root task completes with the
    echo server's reply (label + 1, the words echoed); each ReplyRecv of the server
    completes with the next request. A completion line names the call that blocked."""
    proc = capsule("run", "--trace-filter", "type=endpoint", "--trace-filter",
                   "thread=rootserver,echo", images[("ipc_callreply", arch)])
    lines = proc.stderr.splitlines()
    resumed = [i for i, line in enumerate(lines) if "<..." in line]
    rounds = [(1, 0), (2, 1), (3, 4), (4, 5)]
    calls = [i for i in resumed if " rootserver <... Call resumed> " in lines[i]][:4]
    serves = [i for i in resumed if " echo <... ReplyRecv resumed> " in lines[i]][:3]
    for rnd, ((label, length), at) in enumerate(zip(rounds, calls)):
        reply = [_echo(_word(rnd, i), i) for i in range(length)]
        words = " [" + ", ".join(f"{w:#x}" for w in reply) + "]" if reply else ""
        assert lines[at] == (f"{_blocked_seq(lines, 'rootserver', at)} rootserver "
                             f"<... Call resumed> -> reply label={label + 1:#x} "
                             f"length={length}{words}")
    for rnd, at in enumerate(serves, start=1):  # the server, waiting, gets round rnd
        label, length = rounds[rnd]
        sent = ", ".join(f"{_word(rnd, i):#x}" for i in range(length))
        assert lines[at] == (f"{_blocked_seq(lines, 'echo', at)} echo <... ReplyRecv resumed>"
                             f" -> badge=0x0 label={label:#x} length={length} [{sent}]")


@pytest.mark.parametrize("arch", ARCHES)
def test_faults_are_traced_to_their_handler(images, guest_elves, arch: str) -> None:  # type: ignore[no-untyped-def]
    """IPCFLT0001 and IPCFLT0005 (ipc_faults.c): the thread "unknown" traps an unknown
    syscall at unknown_syscall_at; its fault goes to the endpoint minted with badge 0xfa;
    the root task's Recv gets the UnknownSyscall message; the reply skips the trap, so
    the thread restarts at unknown_syscall_again. "orphan" has no handler and stops."""
    from kernel.abi.arch import Arch, abi_for
    from kernel.abi.constants import FaultLabel

    syms = symbols(guest_elves[arch]["ipc_faults"])
    layout = abi_for(Arch.from_name(arch)).unknown_syscall_mrs  # the fault message's words
    length = len(layout)
    proc = capsule("run", "--trace-filter", "event!=switch", images[("ipc_faults", arch)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("-- fault unknown: "))
    fault = lines[at]
    assert fault.startswith(f"-- fault unknown: UnknownSyscall: syscall number -99 at pc "
                            f"{syms['unknown_syscall_at']:#x} -> endpoint 0x")
    assert fault.endswith(" badge=0xfa, waiting for the reply")
    handler = lines[at + 1]
    seq = _blocked_seq(lines, "rootserver", at)
    assert handler.startswith(
        f"{seq} rootserver <... Recv resumed> -> badge=0xfa "
        f"label={FaultLabel.seL4_Fault_UnknownSyscall:#x} length={length} [")
    words = [int(w, 16) for w in handler.split("[", 1)[1].rstrip("]").split(", ")]
    assert words[layout.index("FaultIP")] == syms["unknown_syscall_at"]
    restart = next(line for line in lines[at:] if line.startswith("-- unknown <..."))
    assert restart == (f"-- unknown <... UnknownSyscall fault resumed> -> restarts at pc "
                       f"{syms['unknown_syscall_again']:#x}")
    (orphan,) = [line for line in lines if line.startswith("-- fault orphan: ")]
    assert f"at pc {syms['orphan_illegal_at']:#x}" in orphan
    assert orphan.endswith("-> no handler: stopped")
    records = [json.loads(line) for line in capsule(
        "run", "--trace-json", "--trace-filter", "event=fault", images[("ipc_faults", arch)]
    ).stderr.splitlines()]
    assert {r["kind"] for r in records} == {"fault"}
    assert [r["thread"] for r in records if r["handler"] is None] == ["orphan"]


def test_thread_switches_are_traced(images) -> None:  # type: ignore[no-untyped-def]
    """The first Call of ipc_callreply.c blocks (the server has not run yet): the
    machine switches to the echo server, and back when it replies."""
    lines = capsule("run", "--trace", images[("ipc_callreply", "riscv64")]).stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if " Call(" in line and "endpoint" in line)
    assert lines[at].endswith("-> blocked")
    assert lines[at + 1] == "-- switch rootserver -> echo"
    back = lines.index("-- switch echo -> rootserver")
    assert " rootserver <... Call resumed> " in lines[back - 1]


def test_the_trace_is_the_same_every_run(images) -> None:  # type: ignore[no-untyped-def]
    image = images[("ipc_faults", "aarch64")]
    first, second = (capsule("run", "--trace", image) for _ in range(2))
    assert first.stderr == second.stderr and len(first.stderr.splitlines()) > 500
    first, second = (capsule("run", "--trace-json", image) for _ in range(2))
    assert first.stderr == second.stderr


def test_trace_lines_never_join_guest_output_in_a_terminal() -> None:
    """Guest output and the trace on one terminal (stdout and stderr both the pty): every
    line is a whole trace line or the guest's whole line."""
    pexpect = pytest.importorskip("pexpect")
    import sys

    text = "Hello from capsule on riscv64!"
    child = pexpect.spawn(sys.executable, ["-m", "capsule.cli", "run", "--trace"],
                          encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    lines = child.before.replace("\r\n", "\n").splitlines()
    assert text in lines
    others = [line for line in lines if line != text]
    assert others == expected_hello_trace("riscv64")
