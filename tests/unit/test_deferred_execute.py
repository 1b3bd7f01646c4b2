"""Deferred execute permission on writable pages (``kernel.model.paging``'s docstring).

What the hardware walk sees (no execute permission until the first fetch), what the
kernel reports (execute allowed all along), and that the first fetch is no fault.
"""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.model.page_tables import walk
from kernel.model.paging import AARCH64_4K, RV64_SV39, Access, PagingFormat, PteKind, VMRights
from kernel.model.tcb import ThreadState
from tests.unit.test_boot import ENTRY, booted

FORMATS = {Arch.RISCV64: RV64_SV39, Arch.AARCH64: AARCH64_4K}
PAGE = 0x8000_0000


def hardware_executes(fmt: PagingFormat, entry: int) -> bool:
    """What the architecture's own walk decides for an instruction fetch (RV64: X;
    AArch64: UXN clear), ignoring the software bit."""
    if fmt is RV64_SV39:
        return bool(entry & (1 << 3))
    return not entry & (1 << 54)


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    return request.param  # type: ignore[no-any-return]


def test_a_writable_executable_leaf_defers_execute(arch: Arch) -> None:
    fmt = FORMATS[arch]
    last = fmt.levels - 1
    entry = fmt.leaf_entry(PAGE, last, VMRights.READ_WRITE, executable=True, cacheable=True)
    assert not hardware_executes(fmt, entry)
    assert fmt.allows(entry, Access.EXECUTE) and fmt.allows(entry, Access.WRITE)
    granted = fmt.granted_execute(entry)
    assert granted is not None and hardware_executes(fmt, granted)
    assert fmt.granted_execute(granted) is None
    # Nothing else about the mapping changes.
    assert fmt.decode(granted, last) == fmt.decode(entry, last) == (PteKind.LEAF, PAGE)
    assert fmt.leaf_rights(granted) is VMRights.READ_WRITE
    assert fmt.allows(granted, Access.WRITE) and fmt.allows(granted, Access.READ)


@pytest.mark.parametrize("rights", [VMRights.READ_ONLY, VMRights.KERNEL_ONLY])
def test_a_leaf_that_cannot_be_written_executes_at_once(arch: Arch, rights: VMRights) -> None:
    fmt = FORMATS[arch]
    entry = fmt.leaf_entry(PAGE, fmt.levels - 1, rights, executable=True, cacheable=True)
    assert hardware_executes(fmt, entry)
    assert fmt.granted_execute(entry) is None


def test_a_non_executable_leaf_defers_nothing(arch: Arch) -> None:
    fmt = FORMATS[arch]
    entry = fmt.leaf_entry(PAGE, fmt.levels - 1, VMRights.READ_WRITE, executable=False,
                           cacheable=True)
    assert not hardware_executes(fmt, entry)
    assert not fmt.allows(entry, Access.EXECUTE)
    assert fmt.granted_execute(entry) is None


def test_the_first_fetch_from_a_deferred_page_is_no_fault(arch: Arch) -> None:
    kernel, machine, _ = booted(arch)
    text = ENTRY[arch]
    before = walk(machine, kernel.paging, machine.root, text)
    assert before.kind is PteKind.LEAF and not hardware_executes(kernel.paging, before.entry)
    entries, flushes, current = kernel.kernel_entries, machine.tlb_flushes, kernel.current

    kernel.vm_fault(text + 4, Access.EXECUTE, 0xC)

    after = walk(machine, kernel.paging, machine.root, text)
    assert hardware_executes(kernel.paging, after.entry)
    assert kernel.paging.leaf_rights(after.entry) is VMRights.READ_WRITE
    assert kernel.kernel_entries == entries  # not a kernel entry the guest could see
    assert machine.tlb_flushes == flushes + 1
    assert kernel.current is current and current.state is ThreadState.RUNNING
    assert current.fault is None


def test_a_fetch_where_nothing_is_deferred_is_a_fault(arch: Arch) -> None:
    kernel, machine, _ = booted(arch)
    unmapped = 0x7000_0000
    entries = kernel.kernel_entries
    root_thread = kernel.current

    kernel.vm_fault(unmapped, Access.EXECUTE, 0xC)

    assert kernel.kernel_entries == entries + 1
    assert root_thread.state is not ThreadState.RUNNING  # no fault handler: it is stopped
