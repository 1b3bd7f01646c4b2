"""JSON forms of view records, made without recursion.

The views' records can nest as deep as a guest builds: a CSpace tree is one level per
CNode, and a guest can chain thousands of CNodes (DESIGN.md decision 9: tools walk
iteratively). ``dataclasses.asdict`` and ``json.dumps(..., indent=...)`` both recurse
once per level, so they raise RecursionError on such a tree. These two functions
produce the same results with an explicit stack instead:

- :func:`as_plain` is ``dataclasses.asdict`` for any value, tuples turned into lists
  (JSON has only lists);
- :func:`json_text` is ``json.dumps(value, indent=indent)``, except that indentation
  stops growing at :data:`MAX_INDENT_LEVELS`: the text of a chain 10,000 deep grows
  linearly with it, not with its square (the lines of the deepest levels would
  otherwise start with tens of thousands of spaces). The text is JSON either way and
  parses to the same value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from typing import Any, Final

__all__ = ["MAX_INDENT_LEVELS", "OMIT_NONE", "as_plain", "json_text"]

MAX_INDENT_LEVELS: Final = 64
"""Nesting levels :func:`json_text` indents; deeper lines keep this indentation."""


_OMIT_NONE_KEY: Final = "capsule_omit_none"
OMIT_NONE: Final[dict[str, bool]] = {_OMIT_NONE_KEY: True}
"""``dataclasses.field(metadata=OMIT_NONE)``: :func:`as_plain` leaves the field out while
it is None."""


def as_plain(value: object) -> Any:
    """``value`` as plain data: dataclasses become dicts of their fields (in field order),
    lists and tuples lists, dicts dicts with the same keys; anything else is kept as is.
    Equal to ``dataclasses.asdict(value)`` for a dataclass holding no tuples, except that
    a field marked :data:`OMIT_NONE` is left out while it is None (an extension's field,
    absent from the form of a configuration without the extension)."""
    top: list[Any] = [None]
    # Each entry: a value still to convert, and the container and key its result goes to.
    # Containers are made (with their keys in order) before their members are converted.
    pending: list[tuple[object, Any, Any]] = [(value, top, 0)]
    while pending:
        item, into, key = pending.pop()
        result: Any
        if is_dataclass(item) and not isinstance(item, type):
            result = {}
            for f in fields(item):
                member = getattr(item, f.name)
                if member is None and f.metadata.get(_OMIT_NONE_KEY):
                    continue
                result[f.name] = None
                pending.append((member, result, f.name))
        elif isinstance(item, (list, tuple)):
            result = [None] * len(item)
            pending.extend((member, result, index) for index, member in enumerate(item))
        elif isinstance(item, dict):
            result = dict.fromkeys(item)
            pending.extend((member, result, k) for k, member in item.items())
        else:
            result = item
        into[key] = result
    return top[0]


class _Open:
    """A container :func:`json_text` has opened: the members left to write, each with the
    text that goes before it (its key, for a dict), and the bracket that closes it."""

    __slots__ = ("members", "close", "started")

    def __init__(self, members: Iterator[tuple[str, object]], close: str) -> None:
        self.members = members
        self.close = close
        self.started = False


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)  # strings, floats; TypeError for what JSON cannot hold


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
    return json.dumps(key) + ": "


def json_text(value: object, indent: int) -> str:
    """``json.dumps(value, indent=indent)`` for plain data (dicts with str keys, lists,
    tuples, str, int, float, bool, None), written with an explicit stack; nesting deeper
    than :data:`MAX_INDENT_LEVELS` is indented as that level is.

    Raises:
        TypeError: a value JSON cannot hold, or a dict key that is not a str.
    """
    parts: list[str] = []
    stack: list[_Open] = []
    following: tuple[object] | None = (value,)
    while following is not None:
        (item,) = following
        if isinstance(item, dict) and item:
            parts.append("{")
            stack.append(_Open(((_key(k), v) for k, v in item.items()), "}"))
        elif isinstance(item, (list, tuple)) and item:
            parts.append("[")
            stack.append(_Open((("", v) for v in item), "]"))
        else:
            parts.append(_scalar(item))  # a scalar, or an empty container ("{}" / "[]")
        following = _next_member(stack, parts, indent)
    return "".join(parts)


def _next_member(stack: list[_Open], parts: list[str], indent: int) -> tuple[object] | None:
    """Close the open containers that have nothing left, write what goes before the next
    member (separator, line break, indentation, key) and return that member (boxed: it may
    be None, JSON's null); None when the outermost container is closed."""
    while stack:
        top = stack[-1]
        member = next(top.members, None)
        pad = " " * (indent * min(len(stack) - (member is None), MAX_INDENT_LEVELS))
        if member is None:
            stack.pop()
            parts.append("\n" + pad + top.close)
            continue
        prefix, item = member
        parts.append(("," if top.started else "") + "\n" + pad + prefix)
        top.started = True
        return (item,)
    return None
