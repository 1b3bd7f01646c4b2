"""How the kernel's objects pickle: one form, whether the kernel runs as Python or compiled.

Checkpoints and snapshot files pickle the kernel's state (DESIGN.md decision 7). The
kernel compiled with mypyc (``make compiled``) turns every kernel class into a native
class, and pickle's defaults then differ from Python's in three ways that break a round
trip: a native class's ``__new__`` runs ``__init__`` (so pickle cannot make an empty
instance to fill in), its default state is a dict of attributes where a Python class with
``__slots__`` gives ``(None, {slot: value})``, and its default ``__setstate__`` assigns
through ``__setattr__``, which a frozen dataclass refuses. So the form is fixed here, the
same in both builds, and a snapshot taken by one restores in the other:

- A **frozen record** (a frozen dataclass made by :func:`kernel.records.dataclass`: caps,
  rights, faults, decoded invocations, ``KernelConfig``) pickles as a call of its class
  with the values of its ``__init__`` fields in field order (:func:`record_reduce`). Those
  fields are its whole state (a field outside ``__init__`` is derived from them, by a
  default or ``__post_init__``), and ``__init__`` only stores them, so the call rebuilds
  it exactly.
- A **mutable object** (the kernel, threads, CNodes, slots, endpoints, notifications,
  scheduling contexts) derives from :class:`Persistent` and is marked
  ``@mypyc_attr(allow_interpreted_subclasses=True)``: pickle makes it empty and gives it a
  dict of its attributes. The mark is what gives the compiled class Python's ``__new__``
  (one that leaves ``__init__`` to the caller); it cannot be inherited, so each class
  carries it. (mypyc's ``serializable`` mark would be inherited, but in mypyc 2.4 a class
  with that mark alone never runs its ``__init__`` when Python code calls it.) Each such
  class that nothing derives from is also ``@final``: open to subclasses, its methods would
  otherwise be called through mypyc's vtable rather than directly (the compiled sel4test
  ran about 4% slower that way). A class may define its own ``__getstate__`` and
  ``__setstate__`` (the kernel, CNodes and slots do, to keep their links flat).

``tests/guest/test_checkpoint_guests.py`` checks that every class in real kernels' pickles
is one of these (or an enum), so that a new mutable class cannot pickle in Python and
then fail only in the compiled build.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mypy_extensions import mypyc_attr

__all__ = ["Persistent", "attribute_names", "record_reduce"]

_ATTRIBUTES: dict[type, tuple[str, ...]] = {}
"""Per class, the attribute names :meth:`Persistent.__getstate__` saves (computed once)."""


def attribute_names(cls: type) -> tuple[str, ...]:
    """The instance attributes of ``cls`` and its bases, sorted (so that both builds
    list them alike): mypyc's list for a native class (``__mypyc_attrs__``), else the
    ``__slots__`` of its MRO."""
    names = _ATTRIBUTES.get(cls)
    if names is None:
        native = cls.__dict__.get("__mypyc_attrs__")
        found: set[str] = set()
        if native is not None:
            found.update(native)
        else:
            for klass in cls.__mro__:
                slots = klass.__dict__.get("__slots__", ())
                found.update([slots] if isinstance(slots, str) else slots)
        names = _ATTRIBUTES[cls] = tuple(sorted(
            n for n in found if not (n.startswith("__") and n.endswith("__"))))
    return names


@mypyc_attr(allow_interpreted_subclasses=True)
class Persistent:
    """Base of the kernel's mutable objects: pickled as their attributes. Each subclass is
    marked ``@mypyc_attr(allow_interpreted_subclasses=True)`` as this class is (see the
    module docstring)."""

    __slots__ = ()

    # Typed loosely: a subclass may pickle in a form of its own (a tuple, say).
    def __getstate__(self) -> object:
        """Every attribute that is set, by name, in :func:`attribute_names` order."""
        state: dict[str, object] = {}
        for name in attribute_names(type(self)):
            try:
                state[name] = getattr(self, name)
            except AttributeError:
                continue  # never set (an attribute assigned only on some paths)
        return state

    def __setstate__(self, state: Any) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def _make_record_reduce() -> Callable[[Any], tuple[type, tuple[object, ...]]]:
    # A nested function, not a module-level one: compiled by mypyc, only a nested
    # function binds as a method when a class holds it.
    fields_of: dict[type, tuple[str, ...]] = {}

    def __reduce__(self: Any) -> tuple[type, tuple[object, ...]]:  # noqa: N807
        cls = type(self)
        names = fields_of.get(cls)
        if names is None:
            names = fields_of[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        return cls, tuple([getattr(self, name) for name in names])

    return __reduce__


record_reduce: Callable[[Any], tuple[type, tuple[object, ...]]] = _make_record_reduce()
"""The ``__reduce__`` of a frozen record: its class and the values of its ``__init__``
fields, in field order (the order of ``__init__``'s parameters, hand-written ones included:
``tests/unit/test_records.py``)."""
