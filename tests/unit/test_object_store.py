"""The typed object store: a cap's address yields the object of the cap's type, or a
kernel bug (never a guest error, never a wrong object)."""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.errors import KernelBug
from kernel.model.tcb import TCB
from tests.unit.test_state_pickle import _booted


def test_object_at_returns_the_object_of_the_asked_type() -> None:
    kernel, _ = _booted(Arch.RISCV64)
    root = kernel.current
    assert root is not None
    assert kernel.object_at(root.paddr, TCB) is root
    cnode_paddr = root.ctable.cap.object_paddr
    assert cnode_paddr is not None
    assert isinstance(kernel.object_at(cnode_paddr, CNode), CNode)


def test_object_at_refuses_a_missing_object_and_one_of_another_type() -> None:
    kernel, _ = _booted(Arch.RISCV64)
    root = kernel.current
    assert root is not None
    with pytest.raises(KernelBug, match="no Endpoint at"):
        kernel.object_at(root.paddr, Endpoint)  # a TCB lives there
    free = max(kernel.objects) + 0x1000
    with pytest.raises(KernelBug, match="no TCB at"):
        kernel.object_at(free, TCB)
