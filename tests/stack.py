"""Proving a walk iterative: run it with almost no Python stack to spare.

DESIGN.md decision 9: tools that walk kernel structures walk iteratively, since a guest
can build them thousands deep. Under :func:`shallow_stack` the recursion limit is only
:data:`HEADROOM` frames above the caller's depth, so a walk that recursed once per level
raises RecursionError on any structure deeper than that, long before its real depth.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["HEADROOM", "shallow_stack"]

HEADROOM = 100
"""Frames a walk may use on top of its caller's: enough for any walk's fixed call depth
(pickle's nesting of kernel, object store, CNode, slot and cap included)."""


@contextmanager
def shallow_stack() -> Iterator[None]:
    """Run the body with the recursion limit :data:`HEADROOM` frames above the current
    depth; the old limit comes back afterwards."""
    depth = 0
    frame = sys._getframe()
    while frame.f_back is not None:
        depth += 1
        frame = frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 1 + HEADROOM)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)
