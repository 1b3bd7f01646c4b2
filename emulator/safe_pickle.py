"""Unpickling checkpoints without trusting them: only capsule's own data classes load.

A checkpoint's kernel state is pickled (DESIGN.md decision 7: kernel state is plain
data). A plain ``pickle.loads`` would run whatever callable a damaged or hostile file
names; :func:`loads` resolves only classes (never functions or modules) defined in
capsule's state-bearing packages, plus the few containers those classes are made of.
A stream naming anything else is refused with :class:`UnsafePickle` before the object
is built. (Snapshot files also carry a digest: see :mod:`emulator.snapshot`.)
"""

from __future__ import annotations

import io
import pickle

__all__ = ["UnsafePickle", "loads"]

_PACKAGES = ("kernel.", "emulator.", "bootimage.")
"""Packages whose classes a checkpoint may name."""
_OTHERS = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"),
    ("builtins", "object"), ("copyreg", "_reconstructor"),
    ("collections", "OrderedDict"), ("collections", "deque"),
    ("sortedcontainers.sortedlist", "SortedList"),
})
"""Other names a checkpoint's classes pickle through."""


class UnsafePickle(pickle.UnpicklingError):
    """The stream names something a checkpoint never contains."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _OTHERS:
            return super().find_class(module, name)
        if "." in name or not module.startswith(_PACKAGES):
            raise UnsafePickle(f"names {module}.{name}, which no checkpoint holds")
        found = super().find_class(module, name)
        if not isinstance(found, type) or found.__module__ != module:
            raise UnsafePickle(f"names {module}.{name}, which is not one of its classes")
        return found


def loads(data: bytes) -> object:
    """``pickle.loads`` restricted as the module docstring says; raises
    :class:`UnsafePickle` (or another ``pickle.UnpicklingError`` / ``EOFError`` /
    ``ValueError`` for a damaged stream)."""
    return _Restricted(io.BytesIO(data)).load()
