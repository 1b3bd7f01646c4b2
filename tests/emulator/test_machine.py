"""The Unicorn machine: exceptions carried out of hooks, exact instruction counts."""

from __future__ import annotations

import pytest

from bootimage import build_image, load_image
from emulator.session import Session
from kernel.config import KernelConfig
from tests.conftest import ARCHES


@pytest.fixture
def boot_hello(guest_elves):  # type: ignore[no-untyped-def]
    def boot(arch: str, config: KernelConfig | None = None) -> tuple[Session, bytearray]:
        loaded = load_image(build_image(guest_elves[arch]["hello"].read_bytes(),
                                        config or KernelConfig()))
        out = bytearray()
        return Session.boot(loaded.root, loaded.config, out.append), out

    return boot


class Boom(Exception):
    pass


@pytest.mark.parametrize("arch", ARCHES)
def test_exception_in_the_trap_hook_is_re_raised(boot_hello, arch: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    session, _ = boot_hello(arch)
    calls = []

    def exploding_syscall() -> None:
        calls.append(1)
        raise Boom("raised inside the Unicorn hook")

    monkeypatch.setattr(session.kernel, "syscall", exploding_syscall)
    with pytest.raises(Boom, match="inside the Unicorn hook"):
        session.run(1_000_000)
    assert calls == [1]  # the emulation stopped at the first exception


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("limit", [1, 7, 250, 499])
def test_instruction_limit_is_exact(boot_hello, arch: str, limit: int) -> None:
    # Ticks every 100 instructions: the count stays exact across slices and traps.
    session, _ = boot_hello(arch, KernelConfig(tick_instructions=100))
    result = session.run(limit)
    assert result.kind == "limit" and result.status == 6
    assert result.instructions == limit


@pytest.mark.parametrize("arch", ARCHES)
def test_halt_count_equals_sum_of_a_run_split_at_any_point(boot_hello, arch: str) -> None:
    whole, out = boot_hello(arch)
    total = whole.run().instructions
    assert total is not None and out.decode().startswith("Hello")
    # Stopping at the limit just below the total must not have reached the halt.
    partial, _ = boot_hello(arch)
    assert partial.run(total - 1).kind == "limit"
    finishing, _ = boot_hello(arch)
    assert finishing.run(total).kind == "halt"
