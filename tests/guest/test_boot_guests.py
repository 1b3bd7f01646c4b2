"""The first guests on both architectures: hello, bootinfo, and the faults of a root task."""

from __future__ import annotations

import re

import pytest

from kernel.abi.arch import Arch
from kernel.config import KernelConfig
from kernel.platforms import platform_for
from tests.conftest import ARCHES


@pytest.mark.parametrize("arch", ARCHES)
def test_hello(run_guest, arch: str) -> None:
    run = run_guest("hello", arch)
    assert run.output == f"Hello from capsule on {arch}!\n"
    assert (run.result.kind, run.result.status) == ("halt", 0)


@pytest.mark.parametrize("arch", ARCHES)
def test_bootinfo_untypeds_add_up_to_ram_minus_boot(run_guest, arch: str) -> None:
    config = KernelConfig(ram_size=16 << 20)
    run = run_guest("bootinfo", arch, config)
    assert run.result.kind == "halt", run.result.message
    totals = re.search(r"^untyped total: ram=(\d+) device=(\d+)$", run.output, re.M)
    assert totals is not None, run.output
    ram_untyped = int(totals.group(1))
    # What boot kept: the image's pages and the root server's objects, listed by boot.
    reserved = run.session.report.reserved_bytes
    assert ram_untyped == config.ram_size - reserved
    # Independently of the report: the listed untypeds the guest printed, one by one.
    listed = [
        (int(paddr, 16), int(bits), dev == "1")
        for paddr, bits, dev in re.findall(
            r"^untyped \d+: slot=\d+ paddr=0x([0-9a-f]+) sizeBits=(\d+) device=([01])$",
            run.output, re.M)
    ]
    assert sum(1 << bits for _, bits, dev in listed if not dev) == ram_untyped
    # RAM untypeds lie in the RAM the kernel may use, device untypeds outside it: below
    # the kernel's load address only the firmware's RAM (OpenSBI's 2 MiB on RISC-V).
    platform = platform_for(Arch.from_name(arch))
    usable = (platform.kernel_paddr, platform.ram_base + config.ram_size)
    for paddr, bits, dev in listed:
        inside = usable[0] <= paddr < usable[1]
        assert inside != dev, (hex(paddr), bits, dev)


@pytest.mark.parametrize("arch", ARCHES)
def test_bootinfo_regions_printed_match_the_kernel(run_guest, arch: str) -> None:
    run = run_guest("bootinfo", arch)
    info = run.session.report.bootinfo
    for name, region in (("untyped", info.untyped), ("empty", info.empty),
                         ("userImageFrames", info.user_image_frames),
                         ("userImagePaging", info.user_image_paging)):
        assert f"{name}: {region[0]}..{region[1]}\n" in run.output
    assert f"ipcBuffer: {info.ipc_buffer:#x}\n" in run.output


@pytest.mark.parametrize("arch", ARCHES)
def test_illegal_instruction_stops_the_root_task(run_guest, arch: str) -> None:
    run = run_guest("fault_illegal", arch)
    assert (run.result.kind, run.result.status) == ("fault", 3)
    assert "UserException" in run.result.message and "at pc 0x" in run.result.message
    assert "should not" not in run.output


@pytest.mark.parametrize("arch", ARCHES)
def test_unmapped_read_is_a_vm_fault_naming_address_and_pc(run_guest, arch: str) -> None:
    run = run_guest("fault_unmapped", arch)
    assert (run.result.kind, run.result.status) == ("fault", 3)
    message = run.result.message
    assert "VMFault: read at address 0x10000000" in message
    pc = int(re.search(r"at pc (0x[0-9a-f]+)", message).group(1), 16)
    text = [*run.session.kernel.threads.values()][0]
    assert run.session.kernel.registers_of(text)[0] == pc  # the thread would retry the faulting load
    assert "should not get here" not in run.output


@pytest.mark.parametrize("arch", ARCHES)
def test_unknown_syscall_is_a_fault(run_guest, arch: str) -> None:
    run = run_guest("unknown_syscall", arch)
    assert (run.result.kind, run.result.status) == ("fault", 3)
    assert "UnknownSyscall: syscall number -99" in run.result.message
    assert "after unknown syscall" not in run.output


@pytest.mark.parametrize("arch", ARCHES)
def test_same_image_same_output_and_instruction_count(run_guest, arch: str) -> None:
    first = run_guest("bootinfo", arch)
    second = run_guest("bootinfo", arch)
    assert first.output == second.output
    assert first.result.instructions is not None
    assert first.result.instructions == second.result.instructions
    assert first.result.kernel_entries == second.result.kernel_entries


@pytest.mark.parametrize("arch", ARCHES)
def test_preemption_ticks_do_not_change_the_output(run_guest, arch: str) -> None:
    # A tiny tick makes the run pass through many timer ticks; the single thread is
    # preempted and resumed each time and must not notice.
    fine = run_guest("bootinfo", arch, KernelConfig(tick_instructions=97, time_slice_ticks=1))
    coarse = run_guest("bootinfo", arch)
    assert fine.result.ticks > 100
    assert fine.output == coarse.output
    assert fine.result.instructions == coarse.result.instructions
