"""Which timer ticks are quiet (``Kernel.tick_is_quiet``), the promise the block counter
relies on to take them late: a quiet tick charges time and nothing else, so the same
thread goes on running with the same registers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.kernel import Kernel
from kernel.views.invariants import check_all
from tests.unit.test_ipc import World


def _root_running(arch: Arch) -> tuple[World, int]:
    """A booted world with the root task running, and the root task's priority. Its
    invariant checks run where a test asks: as an exit observer they would make every
    tick loud."""
    world = World(arch)
    world.kernel.exit_observers.remove(check_all)
    root = world.kernel.current
    assert root is not None
    return world, root.priority


@settings(max_examples=40, deadline=None)
@given(arch=st.sampled_from(list(Arch)),
       peers=st.lists(st.integers(-2, 0), max_size=3),
       slice_left=st.integers(1, 5),
       observed=st.booleans())
def test_a_quiet_tick_leaves_the_same_thread_with_the_same_registers(
        arch: Arch, peers: list[int], slice_left: int, observed: bool) -> None:
    """Against the tick itself: whenever the kernel calls a tick quiet, taking it keeps
    the running thread and its registers; and a tick that would switch threads is never
    called quiet."""
    world, top = _root_running(arch)
    kernel = world.kernel
    for offset in peers:  # other threads at the root task's priority or below it
        world.thread(top + offset)
    root = kernel.current
    assert root is not None
    root.time_slice = slice_left
    seen: list[Kernel] = []
    if observed:
        kernel.exit_observers.append(seen.append)
    quiet = kernel.tick_is_quiet()
    registers = list(world.window(root))
    kernel.timer_tick()
    stayed = kernel.current is root and list(world.window(root)) == registers
    if quiet:
        assert stayed
    assert quiet == (stayed and not observed)
    assert len(seen) == int(observed)
    check_all(kernel)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_the_last_tick_of_a_slice_is_quiet_only_without_a_peer(arch: Arch) -> None:
    world, top = _root_running(arch)
    kernel = world.kernel
    root = kernel.current
    assert root is not None
    root.time_slice = 2
    world.thread(top - 1)  # lower priority: never chosen over the root task
    assert kernel.tick_is_quiet()
    root.time_slice = 1
    assert kernel.tick_is_quiet()
    peer = world.thread(top)
    assert not kernel.tick_is_quiet()
    kernel.timer_tick()
    assert kernel.current is peer


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_an_exit_observer_that_detaches_itself_hides_no_other(arch: Arch) -> None:
    """The kernel calls the observers present when it exits, each once, even when one
    removes itself (capsule.machine's fault observer does, once a fault is reported)."""
    world, _ = _root_running(arch)
    kernel = world.kernel
    calls: list[str] = []

    def once(k: Kernel) -> None:
        calls.append("once")
        k.exit_observers.remove(once)

    kernel.exit_observers.extend([once, lambda k: calls.append("next")])
    kernel.timer_tick()
    kernel.timer_tick()
    assert calls == ["once", "next", "next"]
