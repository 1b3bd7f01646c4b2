"""One place that sets how hard the property tests search.

Every randomised test of the suite is decorated with :func:`fuzzed` instead of its own
``hypothesis.settings``: in the suite it runs its usual number of examples; under
``make fuzz`` (``python -m tests.fuzz``) the environment scales the examples and the
sequence lengths up, gives each round a fresh seed, and keeps failing examples in
``build/fuzz/examples`` so that a later run replays them first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

__all__ = ["EXAMPLE_DIR", "SCALE_VARIABLE", "fuzzed", "longer", "scale"]

SCALE_VARIABLE = "CAPSULE_FUZZ_SCALE"
"""Environment variable: how many times more examples (and longer sequences) to try."""

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "build" / "fuzz" / "examples"

Test = TypeVar("Test", bound=Callable[..., object])


def scale() -> int:
    """The fuzzing scale: 1 in the suite, more under ``make fuzz``."""
    try:
        return max(1, int(os.environ.get(SCALE_VARIABLE, "1")))
    except ValueError:
        return 1


def longer(length: int) -> int:
    """A sequence length, grown with the scale (at most four times longer)."""
    return length * min(scale(), 4)


def fuzzed(examples: int, *more_checks: HealthCheck) -> Callable[[Test], Test]:
    """Mark a ``@given`` test as a fuzz target and give it ``examples`` examples per run
    (times the scale), no deadline, and, under ``make fuzz``, a database of findings."""
    chosen = settings(
        max_examples=examples * scale(),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, *more_checks],
    )
    if scale() > 1:
        chosen = settings(chosen, database=DirectoryBasedExampleDatabase(str(EXAMPLE_DIR)))

    def decorate(test: Test) -> Test:
        return pytest.mark.fuzz(chosen(test))  # type: ignore[no-any-return]

    return decorate
