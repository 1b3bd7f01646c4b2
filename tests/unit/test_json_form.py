"""kernel.views.json_form: ``dataclasses.asdict`` and ``json.dumps(indent=...)`` without
recursion, equal to them wherever those work."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.kernel import Kernel
from kernel.views.json_form import MAX_INDENT_LEVELS, as_plain, json_text
from kernel.views.render import snapshot, to_json, to_json_text
from tests.stack import shallow_stack
from tests.unit.test_boot import booted

_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8) \
    | st.floats(allow_nan=False, allow_infinity=False)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@given(_JSON, st.integers(min_value=0, max_value=4))
def test_json_text_is_json_dumps(value: object, indent: int) -> None:
    assert json_text(value, indent) == json.dumps(value, indent=indent)


@dataclass
class _Leaf:
    name: str
    fields: dict[str, int | str | bool]


@dataclass
class _Tree:
    value: int
    leaf: _Leaf | None
    children: list[_Tree] = field(default_factory=list)


def test_as_plain_is_asdict() -> None:
    tree = _Tree(1, _Leaf("a", {"x": 1, "y": "z", "b": True}),
                 [_Tree(2, None), _Tree(3, _Leaf("b", {}), [_Tree(4, None)])])
    assert as_plain(tree) == asdict(tree)
    assert list(as_plain(tree)) == ["value", "leaf", "children"]
    assert as_plain((1, [2, (3,)])) == [1, [2, [3]]]  # JSON has only lists


def test_deeper_than_the_indent_limit_stays_json_and_stops_indenting() -> None:
    value: list[object] = []
    inner = value
    for _ in range(MAX_INDENT_LEVELS + 20):
        inner.append({"k": []})
        inner = inner[-1]["k"]  # type: ignore[index]
    text = json_text(value, 1)
    assert json.loads(text) == value
    assert max(len(line) - len(line.lstrip(" ")) for line in text.splitlines()) == MAX_INDENT_LEVELS


def test_a_100000_deep_value_needs_no_recursion() -> None:
    tree = _Tree(0, None)
    node = tree
    for n in range(1, 100_000):
        node.children.append(_Tree(n, None))
        node = node.children[0]
    with shallow_stack():
        plain = as_plain(tree)
        text = json_text(plain, 1)
    assert text.count('"value": ') == 100_000 and text.endswith("}")
    assert f'"value": {99_999},' in text


@pytest.mark.parametrize("value", [{1: 2}, {"a": object()}, [b"bytes"]])
def test_what_json_cannot_hold_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        json_text(value, 1)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_the_render_json_forms_are_asdict_and_json_dumps(arch: Arch) -> None:
    """``capsule cspace --format json`` prints what it printed with ``asdict`` and
    ``json.dumps(..., indent=1)`` (an extension's fields, None without it, left out)."""
    kernel: Kernel = booted(arch)[0]
    for snap in (snapshot(kernel, "boot"), snapshot(kernel, all_slots_too=True)):
        plain = _without_extension_nones(asdict(snap))
        assert to_json(snap) == plain
        assert to_json_text(snap) == json.dumps(plain, indent=1)


_EXTENSION_FIELDS = ("server", "waiting_lookup", "mcs")
"""The views' fields of capsule's server-backed CNodes and of MCS kernels (OMIT_NONE:
absent while None)."""


def _without_extension_nones(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_extension_nones(v) for k, v in value.items()
                if not (k in _EXTENSION_FIELDS and v is None)}
    if isinstance(value, list):
        return [_without_extension_nones(v) for v in value]
    return value
