"""MCS guest programs (userland/mcs/*.c), built as ``capsule cc --mcs`` builds them:
libsel4 and the runtime compiled with CONFIG_KERNEL_MCS, the image's kernel the MCS one.

Asserted: every check of mcs_boot.c passes on both architectures (its output itself
travels through the MCS system-call numbers), the invariant checker ran after every
kernel entry, and the real ``capsule cc --mcs`` command builds an image whose
configuration is MCS and which ``capsule run`` runs to the same verdict. The same
program built for the non-MCS kernel does not compile (seL4_Recv takes a reply object
only in MCS), and an MCS build on a non-MCS kernel fails its first system call's check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.session import Session
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.sched_context import SchedContext
from kernel.model.tcb import ThreadState
from kernel.views.invariants import enable_invariant_checks
from tests.cli.test_cli_cc import command_path, shell
from tests.conftest import ARCHES, GuestRun
from tests.guest.checks import SOURCE_ID, assert_all_checks_pass
from userland.libsel4.generate import MCS_MACRO
from userland.toolchain import USERLAND, build_program

pytest.importorskip("ziglang")

SOURCE = USERLAND / "mcs" / "mcs_boot.c"
INCLUDE = USERLAND / "tests"  # checks.h
EXPECTED = [f"MCSBOOT{i:04d}" for i in range(1, 6)]
SCHED = USERLAND / "mcs" / "mcs_sched.c"
SCHED_EXPECTED = [f"MCSSC{i:04d}" for i in range(1, 5)]
IPC = USERLAND / "mcs" / "mcs_ipc.c"
IPC_EXPECTED = [f"MCSIPC{i:04d}" for i in range(1, 6)]


def _build(arch: str, tmp_path: Path, source: Path = SOURCE) -> Path:
    elf = tmp_path / f"{source.stem}-{arch}.elf"
    build_program([source], arch, elf, include_dirs=[INCLUDE], defines=[MCS_MACRO])
    return elf


def _run(elf: Path, config: KernelConfig,
         observe: Callable[[Kernel, list[int]], None] | None = None) -> GuestRun:
    loaded = load_image(build_image(elf.read_bytes(), config))
    out = bytearray()
    session = Session.boot(loaded.root, loaded.config, out.append)
    enable_invariant_checks(session.kernel)
    if observe is not None:
        session.kernel.syscall_observers.append(observe)
    result = session.run(50_000_000)
    return GuestRun(out.decode(), result, session)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_mcs_boot_program_passes(arch: str, tmp_path: Path) -> None:
    run = _run(_build(arch, tmp_path), KernelConfig(mcs=True))
    assert run.session.kernel.config.mcs
    assert_all_checks_pass(run, EXPECTED)


def test_check_ids_are_unique_and_in_order() -> None:
    assert SOURCE_ID.findall(SOURCE.read_text()) == EXPECTED
    assert SOURCE_ID.findall(SCHED.read_text()) == SCHED_EXPECTED
    assert SOURCE_ID.findall(IPC.read_text()) == IPC_EXPECTED


@pytest.mark.parametrize("arch", ARCHES)
def test_the_ipc_program_passes_and_the_passive_server_borrows(arch: str,
                                                               tmp_path: Path) -> None:
    """mcs_ipc.c: Call / Recv / ReplyRecv with reply objects, a passive server, two
    reply objects answered out of order, a Call without a reply object, a fault sent to
    the TCB's handler cap and answered through a reply object. Observed from
    outside: the server runs on its own context until it is made passive, then on the
    root task's, lent along each Call and given back with each reply."""
    seen: list[SchedContext | None] = []

    def observe(kernel: Kernel, window: list[int]) -> None:
        current = kernel.current
        if current is not None and current.name == "server":
            seen.append(current.sched_context)

    run = _run(_build(arch, tmp_path, IPC), KernelConfig(mcs=True), observe)
    assert_all_checks_pass(run, IPC_EXPECTED)
    kernel = run.session.kernel
    root = next(t for t in kernel.threads.values() if t.name == "rootserver")
    server = next(t for t in kernel.threads.values() if t.name == "server")
    root_sc = root.sched_context
    assert root_sc is not None and root_sc.tcb is root and root_sc.reply is None
    # Recv and two ReplyRecvs on its own context, then two ReplyRecvs on the root's.
    assert len(seen) == 5
    own = seen[0]
    assert own is not None and own is not root_sc
    assert seen[:3] == [own] * 3 and seen[3:] == [root_sc, root_sc]
    assert server.sched_context is own  # bound back by the program
    lost = next(t for t in kernel.threads.values() if t.name == "lost")
    assert lost.state is ThreadState.INACTIVE and lost.reply_object is None
    faulter = next(t for t in kernel.threads.values() if t.name == "faulter")
    # Answered: restarting at the faulting instruction, below the root task's priority.
    assert faulter.state is ThreadState.RESTART and faulter.fault is None
    assert faulter.reply_object is None


@pytest.mark.parametrize("arch", ARCHES)
def test_the_scheduling_context_program_passes(arch: str, tmp_path: Path) -> None:
    """mcs_sched.c: SchedControl and SchedContext invocations from C, and a thread
    that runs on the context SetSchedParams gave it."""
    run = _run(_build(arch, tmp_path, SCHED), KernelConfig(mcs=True))
    assert_all_checks_pass(run, SCHED_EXPECTED)
    kernel = run.session.kernel
    worker = next(t for t in kernel.threads.values() if t.name == "worker")
    assert worker.sched_context is None  # unbound again by the program's last checks
    contexts = [o for o in kernel.objects.values() if isinstance(o, SchedContext)]
    configured = [sc for sc in contexts if sc.badge == 0x5C]
    assert len(configured) == 1 and configured[0].sporadic
    assert configured[0].max_refills == 4


@pytest.mark.parametrize("arch", ARCHES)
def test_capsule_cc_mcs_builds_and_runs_it(arch: str, tmp_path: Path) -> None:
    env = command_path(tmp_path)
    proc = shell(f"capsule cc {SOURCE} -I {INCLUDE} --arch {arch} --mcs -o mcs.img",
                 tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert load_image((tmp_path / "mcs.img").read_bytes()).config.mcs
    run = shell("capsule run mcs.img", tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith(f"verdict: {len(EXPECTED)} passed, 0 failed\n")
    inspect = shell("capsule image inspect --json mcs.img", tmp_path, env)
    assert re.search(r'"mcs": true', inspect.stdout), inspect.stdout
    # The trace names the calls by their MCS numbers: -10 is NBWait (a Poll here), -12
    # DebugPutChar; the non-MCS kernel's -10 would be DebugDumpScheduler.
    trace = shell("capsule run --trace mcs.img", tmp_path, env).stderr
    assert re.search(r"^#\d+ rootserver DebugPutChar\('M'\)$", trace, re.M), trace[:2000]
    assert re.search(r"^#\d+ rootserver NBWait\(cap=0x[0-9a-f]+ notification, Poll\) "
                     r"-> badge=0x0$", trace, re.M)
    cspace = shell("capsule cspace mcs.img", tmp_path, env).stdout
    budget = 50_000 if arch == "riscv64" else 312_500
    assert re.search(rf"\[14\] seL4_CapInitThreadSC: sched_context 0x[0-9a-f]+ size_bits=7 "
                     rf"budget={budget} period=0 refills=2 max_refills=2 consumed=0 "
                     r"thread=rootserver$", cspace, re.M), cspace


def test_capsule_run_mcs_runs_an_mcs_elf(tmp_path: Path) -> None:
    """An ELF carries no configuration: ``capsule run --mcs`` boots it MCS; without the
    flag its first MCS call (DebugPutChar is -12) means another call to a non-MCS
    kernel, and the run stops; an image carries its own configuration, so the flag is
    refused with one line."""
    env = command_path(tmp_path)
    proc = shell(f"capsule cc {SOURCE} -I {INCLUDE} --mcs -o mcs.img --elf mcs.elf",
                 tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    run = shell("capsule run --mcs mcs.elf", tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith(f"verdict: {len(EXPECTED)} passed, 0 failed\n")
    plain = shell("capsule run mcs.elf", tmp_path, env)
    assert plain.returncode != 0 and "verdict" not in plain.stdout
    refused = shell("capsule run --mcs mcs.img", tmp_path, env)
    assert refused.returncode != 0 and "--mcs" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_the_mcs_api_is_not_there_without_mcs(tmp_path: Path) -> None:
    """seL4_Recv with a reply object, seL4_NBSendRecv: MCS only, as in libsel4."""
    from userland.toolchain import CompileError

    with pytest.raises(CompileError) as refused:
        build_program([SOURCE], "riscv64", tmp_path / "x.elf", include_dirs=[INCLUDE])
    assert "seL4_SchedContextObject" in refused.value.diagnostics


def test_a_non_mcs_kernel_does_not_understand_an_mcs_program(tmp_path: Path) -> None:
    """-12 is DebugPutChar under MCS but DebugCapIdentify without: the program prints
    nothing and ends without its verdict."""
    run = _run(_build("riscv64", tmp_path), KernelConfig())
    assert "verdict" not in run.output


@pytest.mark.parametrize("arch", ARCHES)
def test_gdb_thread_descriptions_name_the_scheduling_context(arch: str, tmp_path: Path) -> None:
    """``info threads`` (qThreadExtraInfo) under MCS: the context a thread runs on; a
    non-MCS kernel's description is as before."""
    from emulator.gdb_target import GdbTarget

    elf = _build(arch, tmp_path)
    mcs = load_image(build_image(elf.read_bytes(), KernelConfig(mcs=True)))
    session = Session.boot(mcs.root, mcs.config, lambda byte: None)
    target = GdbTarget(session)
    [(_, root)] = target.threads()
    assert root.sched_context is not None
    assert target.describe(root) == (
        f"current, Running, priority 255, sched_context={root.sched_context.paddr:#x}")
    plain = load_image(build_image(_build_plain(arch, tmp_path).read_bytes(), KernelConfig()))
    plain_session = Session.boot(plain.root, plain.config, lambda byte: None)
    plain_target = GdbTarget(plain_session)
    [(_, plain_root)] = plain_target.threads()
    assert plain_target.describe(plain_root) == "current, Running, priority 255"


def _build_plain(arch: str, tmp_path: Path) -> Path:
    """A non-MCS program: the toolchain's smallest guest."""
    source = tmp_path / "plain.c"
    source.write_text("#include <sel4/sel4.h>\nint main(void) { seL4_DebugHalt(); return 0; }\n")
    elf = tmp_path / f"plain-{arch}.elf"
    build_program([source], arch, elf)
    return elf
