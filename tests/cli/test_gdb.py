"""``capsule run --gdb`` driven for real: gdb-multiarch in batch mode, and a raw socket
for what batch gdb cannot show (Ctrl-C, a dropped connection, stops at system calls).

The tests that run gdb-multiarch itself skip when it is not installed, with the reason;
CI installs it and sets ``CAPSULE_REQUIRE_GDB=1``, which turns that skip into a failure
(``tests/cli/conftest.py``)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootimage import build_image, load_image_file
from kernel.config import KernelConfig
from tests.cli.conftest import REQUIRE_GDB, gdb_or_skip
from tests.cli.test_cli_run import assert_one_line_error, capsule
from tests.conftest import ARCHES

GDB_ARCH = {"riscv64": "riscv:rv64", "aarch64": "aarch64"}
TRAP = {"riscv64": bytes.fromhex("73000000"), "aarch64": bytes.fromhex("010000d4")}
"""ecall / svc #0."""


def symbols(elf: Path) -> dict[str, int]:
    with elf.open("rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        return {sym.name: sym["st_value"] for sym in table.iter_symbols()}  # type: ignore[union-attr]


@pytest.fixture
def image(guest_elves, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(name: str, arch: str) -> tuple[Path, Path]:
        path = tmp_path / f"{name}-{arch}.img"
        elf = guest_elves[arch][name]
        path.write_bytes(build_image(elf.read_bytes(), KernelConfig()))
        return path, elf

    return make


class Stub:
    """``capsule run --gdb 127.0.0.1:0 IMAGE`` as a subprocess, and the port it chose."""

    def __init__(self, image: Path, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "capsule.cli", "run", "--gdb", "127.0.0.1:0", *options,
             str(image)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.fullmatch(r"capsule: waiting for gdb on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        self.port = int(match.group(1))

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def stubs() -> Iterator[list[Stub]]:
    started: list[Stub] = []
    yield started
    for stub in started:
        stub.kill()


def gdb_batch(gdb: str, arch: str, elf: Path, port: int, *commands: str) -> str:
    args = [gdb, "-batch", "-nx", "-ex", f"set architecture {GDB_ARCH[arch]}",
            "-ex", f"file {elf}", "-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_gdb_threads_registers_global_breakpoint_step(arch: str, image, stubs,  # type: ignore[no-untyped-def]
                                                      gdb_multiarch: str) -> None:
    path, elf = image("hello", arch)
    syms = symbols(elf)
    bootinfo_vaddr = _bootinfo_vaddr(path)
    stub = Stub(path)
    stubs.append(stub)
    out = gdb_batch(
        gdb_multiarch, arch, elf, stub.port,
        "info threads", "printf \"entry=%#lx\\n\", $pc",
        "break main", "continue",
        "printf \"bootinfo=%#lx\\n\", sel4_bootinfo",
        "printf \"before=%#lx\\n\", $pc", "stepi", "printf \"after=%#lx\\n\", $pc",
        "continue",
    )
    assert re.search(r'\* 1 +Thread 1 "rootserver" \(current, Running', out), out
    entry = int(re.search(r"entry=(0x[0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    assert entry == syms["_sel4_start"] == load_image_file(path).root.entry
    assert re.search(r"Breakpoint 1, main \(\) at apps/hello\.c", out), out
    assert int(re.search(r"bootinfo=(0x[0-9a-f]+)", out).group(1), 16) == bootinfo_vaddr  # type: ignore[union-attr]
    before = int(re.search(r"before=(0x[0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    after = int(re.search(r"after=(0x[0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    assert syms["main"] < before < syms["main"] + 0x40
    assert after - before in (2, 4)  # one instruction (RISC-V may be compressed)
    assert "exited normally" in out
    status, stdout, stderr = stub.finish()
    assert status == 0, stderr
    assert stdout == f"Hello from capsule on {arch}!\n"
    assert "Traceback" not in stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_extracted_elf_lists_its_sources_from_any_directory(arch: str, image, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            gdb_multiarch: str) -> None:
    """``capsule image extract`` gives back the ELF that was built, and gdb run from a
    directory that is not the repository's finds its source lines."""
    path, elf = image("hello", arch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    extracted = capsule("image", "extract", str(path), "-o", "prog.elf", cwd=elsewhere)
    assert extracted.returncode == 0, extracted.stderr
    assert (elsewhere / "prog.elf").read_bytes() == elf.read_bytes()
    proc = subprocess.run([gdb_multiarch, "-batch", "-nx", "-ex", "list main", "prog.elf"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=120, check=False)
    assert 'printf("Hello from capsule on %s!\\n", CAPSULE_ARCH_NAME);' in proc.stdout, \
        proc.stdout + proc.stderr


def test_without_gdb_multiarch_its_tests_skip_unless_required(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    """gdb-multiarch missing from PATH: a skip with the reason on a developer's machine,
    a failure under CI (which sets CAPSULE_REQUIRE_GDB=1 and installs gdb)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_GDB, raising=False)
    with pytest.raises(pytest.skip.Exception, match="gdb-multiarch is not installed"):
        gdb_or_skip()
    monkeypatch.setenv(REQUIRE_GDB, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_GDB}=1 requires it"):
        gdb_or_skip()


def test_ci_installs_gdb_and_requires_it() -> None:
    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "apt-get install -y -qq gdb-multiarch" in script
    assert f"export {REQUIRE_GDB}=1" in script


def _bootinfo_vaddr(path: Path) -> int:
    from emulator.session import Session

    loaded = load_image_file(path)
    return Session.boot(loaded.root, loaded.config, lambda byte: None).report.bootinfo_vaddr


# --- a raw client, for what batch gdb cannot do -----------------------------------------


class Client:
    """A minimal gdb-protocol client written independently of emulator.gdb_protocol."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.send_raw(b"$%s#%02x" % (payload, sum(payload) % 256))

    def reply(self) -> bytes:
        while True:
            match = re.search(rb"\$([^#]*)#([0-9a-f]{2})", self.buffer)
            if match:
                self.buffer = self.buffer[match.end():]
                assert sum(match.group(1)) % 256 == int(match.group(2), 16)
                self.send_raw(b"+")
                return match.group(1)
            data = self.sock.recv(4096)
            assert data, "stub closed the connection"
            self.buffer += data

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()


@pytest.mark.parametrize("arch", ARCHES)
def test_ctrl_c_interrupts_a_running_guest(arch: str, image, stubs) -> None:  # type: ignore[no-untyped-def]
    # spin never ends by itself, so Ctrl-C always finds it running, however fast the
    # kernel (a guest that ends on its own could finish before the Ctrl-C arrives).
    path, _ = image("spin", arch)
    stub = Stub(path)
    stubs.append(stub)
    client = Client(stub.port)
    assert client.ask(b"?").startswith(b"T05thread:1;")
    client.send(b"c")
    time.sleep(0.3)
    client.send_raw(b"\x03")
    assert client.reply() == b"T02thread:1;"
    assert client.ask(b"qfThreadInfo") == b"m1"
    client.send(b"k")
    status, stdout, stderr = stub.finish()
    assert status == 119, stderr  # killed from gdb once interrupted
    assert stdout.startswith("spinning\n")
    assert stderr.splitlines()[-1] == "capsule: the guest was killed by gdb"


@pytest.mark.parametrize("arch", ARCHES)
def test_stop_at_syscalls_stops_right_after_each_trap(arch: str, image, stubs) -> None:  # type: ignore[no-untyped-def]
    path, _ = image("hello", arch)
    stub = Stub(path, "--gdb-stop-at-syscalls")
    stubs.append(stub)
    client = Client(stub.port)
    pcs = []
    for _ in range(3):
        assert client.ask(b"c") == b"T05thread:1;"
        pc = int.from_bytes(bytes.fromhex(client.ask(b"p20").decode()), "little")
        assert client.ask(b"m%x,4" % (pc - 4)) == TRAP[arch].hex().encode()
        pcs.append(pc)
    assert len(set(pcs)) == 1  # DebugPutChar in a loop: the same trap each time
    client.send(b"k")
    status, stdout, stderr = stub.finish()
    assert status == 119, stderr  # killed from gdb: capsule's own status, not a guest's
    assert stdout == "Hel"  # three characters, each stop after its syscall
    assert stderr.splitlines()[-1] == "capsule: the guest was killed by gdb"


@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
def test_max_instructions_holds_under_gdb(image, stubs, detach: bool) -> None:  # type: ignore[no-untyped-def]
    """``spin`` never ends by itself: the instruction limit ends it, gdb attached or not,
    with the status and the line ``capsule run`` gives without gdb."""
    path, _ = image("spin", "riscv64")
    stub = Stub(path, "--max-instructions", "300000")
    stubs.append(stub)
    client = Client(stub.port)
    if detach:
        assert client.ask(b"D") == b"OK"
    else:
        assert client.ask(b"c") == b"W%02x" % 124  # gdb hears the status capsule exits with
    status, stdout, stderr = stub.finish()
    assert status == 124, stderr
    assert stdout == "spinning\nforever"
    assert stderr.splitlines()[-1] == "capsule: instruction limit 300000 reached"


@pytest.mark.parametrize("arch", ARCHES)
def test_bad_requests_get_error_replies_and_change_nothing(arch: str, image, stubs) -> None:  # type: ignore[no-untyped-def]
    path, _ = image("hello", arch)
    stub = Stub(path)
    stubs.append(stub)
    client = Client(stub.port)
    registers = client.ask(b"g")
    assert client.ask(b"m10,8") == b"E0e"  # page 0 is never mapped
    assert client.ask(b"M10,1:00") == b"E0e"
    assert client.ask(b"mzz,4") == b"E16"
    assert client.ask(b"p999") == b"E16"
    assert client.ask(b"G00") == b"E16"
    assert client.ask(b"Hg99") == b"E16"
    assert client.ask(b"Z0,nothex,4") == b"E16"
    assert client.ask(b"Z2,1000,4") == b""  # watchpoints: not supported
    assert client.ask(b"vNoSuchThing") == b""
    client.send_raw(b"$g#00")  # bad checksum: answered '-', then nothing else
    assert client.sock.recv(1) == b"-"
    assert client.ask(b"g") == registers
    client.send(b"c")
    assert client.reply() == b"W00"
    status, stdout, _ = stub.finish()
    assert status == 0 and stdout == f"Hello from capsule on {arch}!\n"


def test_dropped_connection_is_one_line_and_non_zero(image, stubs) -> None:  # type: ignore[no-untyped-def]
    path, _ = image("hello", "riscv64")
    stub = Stub(path)
    stubs.append(stub)
    client = Client(stub.port)
    assert client.ask(b"qC") == b"QC1"
    client.sock.close()
    status, stdout, stderr = stub.finish()
    assert status == 120
    assert stdout == ""
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "capsule: gdb connection lost: gdb closed the connection"


def test_bad_address_and_port_in_use() -> None:
    assert_one_line_error(capsule("run", "--gdb", "nonsense"), "--gdb", "HOST:PORT")
    assert_one_line_error(capsule("run", "--gdb", "127.0.0.1:70000"), "out of range")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        assert_one_line_error(capsule("run", "--gdb", f"127.0.0.1:{port}"),
                              "cannot listen", str(port))
    finally:
        busy.close()
    assert_one_line_error(capsule("run", "--gdb-stop-at-syscalls"), "needs --gdb")
