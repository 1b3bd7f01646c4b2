"""kernel.records.dataclass: a frozen slots class it makes behaves as the one
``dataclasses.dataclass`` makes from the same body."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

import kernel
from kernel.records import dataclass as records_dataclass


@dataclass(frozen=True, slots=True)
class StdBase:
    """A base."""

    a: int
    b: int = 3
    K: ClassVar[int] = 5


@dataclass(frozen=True, slots=True)
class StdChild(StdBase):
    c: tuple[int, ...] = field(default_factory=tuple)
    d: int = field(default=7, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class StdPost:
    x: int
    y: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "y", {"x": self.x})


@dataclass(frozen=True, slots=True, eq=False)
class StdIdentity:
    q: int


@dataclass(frozen=True, slots=True)
class StdSelf:
    self: int


@records_dataclass(frozen=True, slots=True)
class OurBase:
    """A base."""

    a: int
    b: int = 3
    K: ClassVar[int] = 5


@records_dataclass(frozen=True, slots=True)
class OurChild(OurBase):
    c: tuple[int, ...] = field(default_factory=tuple)
    d: int = field(default=7, repr=False, compare=False)


@records_dataclass(frozen=True, slots=True)
class OurPost:
    x: int
    y: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "y", {"x": self.x})


@records_dataclass(frozen=True, slots=True, eq=False)
class OurIdentity:
    q: int


@records_dataclass(frozen=True, slots=True)
class OurSelf:
    self: int


@dataclass
class StdMutable:
    a: int
    b: list[int] = field(default_factory=list)


@records_dataclass
class OurMutable:
    a: int
    b: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class StdFrozenDict:
    a: int


@records_dataclass(frozen=True)
class OurFrozenDict:
    a: int


@dataclass(slots=True, eq=False)
class StdSlotsIdentity:
    a: int


@records_dataclass(slots=True, eq=False)
class OurSlotsIdentity:
    a: int


PAIRS: list[tuple[Any, Any, tuple[Any, ...], dict[str, Any]]] = [
    (StdBase, OurBase, (1,), {}),
    (StdBase, OurBase, (1,), {"b": 2}),
    (StdChild, OurChild, (1, 2, (3,), 4), {}),
    (StdChild, OurChild, (1,), {}),
    (StdPost, OurPost, (4,), {}),
    (StdIdentity, OurIdentity, (1,), {}),
    (StdSelf, OurSelf, (3,), {}),
    (StdFrozenDict, OurFrozenDict, (3,), {}),
]

MUTABLE_PAIRS: list[tuple[Any, Any, tuple[Any, ...]]] = [
    (StdMutable, OurMutable, (1,)),
    (StdMutable, OurMutable, (1, [2])),
    (StdSlotsIdentity, OurSlotsIdentity, (1,)),
]


def _shape(cls: Any) -> object:
    params = cls.__dataclass_params__
    return ([(f.name, f.type, f.init, f.repr, f.compare, f.hash, f.default)
             for f in dataclasses.fields(cls)],
            cls.__match_args__, cls.__dict__.get("__slots__"), cls.__doc__.replace("Std", "Our"),
            (params.init, params.repr, params.eq, params.order, params.frozen))


@pytest.mark.parametrize(("std", "ours", "args", "kwargs"), PAIRS)
def test_same_as_dataclass(std: Any, ours: Any, args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> None:
    assert _shape(std) == _shape(ours)
    expected, made = std(*args, **kwargs), ours(*args, **kwargs)
    assert repr(made) == repr(expected).replace("Std", "Our")
    assert dataclasses.asdict(made) == dataclasses.asdict(expected)
    assert hasattr(made, "__dict__") == hasattr(expected, "__dict__")
    again = pickle.loads(pickle.dumps(made))
    assert repr(again) == repr(made)
    if std.__dataclass_params__.eq:
        assert again == made and copy.deepcopy(made) == made
        assert hash(again) == hash(made) == hash(expected)
        assert made != dataclasses.replace(made, **{dataclasses.fields(made)[0].name: 99})
    else:
        assert again != made and made == made
    for name in ("zz", dataclasses.fields(made)[0].name):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, name, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(made, name)


@pytest.mark.parametrize(("std", "ours", "args"), MUTABLE_PAIRS)
def test_mutable_same_as_dataclass(std: Any, ours: Any, args: tuple[Any, ...]) -> None:
    assert _shape(std) == _shape(ours)
    expected, made = std(*args), ours(*args)
    assert repr(made) == repr(expected).replace("Std", "Our")
    assert (std.__hash__ is None) == (ours.__hash__ is None)
    assert (made == ours(*args)) == (expected == std(*args))
    made.a = 5
    assert made.a == 5 and repr(pickle.loads(pickle.dumps(made))) == repr(made)


def test_fields_left_out_of_comparison_and_repr() -> None:
    assert OurChild(1, d=4) == OurChild(1, d=5)
    assert repr(OurPost(4)) == "OurPost(x=4)" and OurPost(4).y == {"x": 4}


def test_missing_argument_and_recursion() -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
        OurBase()  # type: ignore[call-arg]

    @records_dataclass(frozen=True, slots=True)
    class Loop:
        other: object = None

    loop = Loop()
    object.__setattr__(loop, "other", loop)
    assert repr(loop).endswith("Loop(other=...)")


def test_inheritance_rules_kept() -> None:
    @dataclass
    class Mutable:
        a: int

    with pytest.raises(TypeError, match="cannot inherit frozen dataclass from a non-frozen"):
        records_dataclass(type("Frozen", (Mutable,), {"__annotations__": {"b": "int"}}),
                          frozen=True, slots=True)
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen"):
        dataclass(type("Thawed", (OurBase,), {"__annotations__": {"e": "int"}}))
    assert OurBase.__dataclass_params__.frozen


def test_methods_compiled_on_first_call_only() -> None:
    @records_dataclass(frozen=True, slots=True)
    class Lazy:
        a: int

    placeholder = Lazy.__init__
    assert Lazy(1) == Lazy(1)
    assert Lazy.__init__ is not placeholder
    assert Lazy.__init__.__qualname__.endswith("Lazy.__init__")
    compiled = Lazy.__init__
    Lazy(2)
    assert Lazy.__init__ is compiled


def test_a_field_out_of_init_keeps_its_default_where_dataclasses_puts_it() -> None:
    for decorate in (dataclass, records_dataclass):
        @decorate
        class Plain:
            a: int
            b: int = field(default=4, init=False)

        @decorate(slots=True)
        class Slotted:
            a: int
            b: int = field(default=4, init=False)

        assert Plain(1).__dict__ == {"a": 1} and Plain(1).b == 4
        assert Slotted(1).b == 4


def test_other_options_are_dataclasses_own() -> None:
    @records_dataclass(order=True)
    class Ordered:
        a: int

    assert Ordered(1) < Ordered(2) and Ordered(1) == Ordered(1)
    assert not Ordered.__dataclass_params__.frozen


def _kernel_classes_with_own_init() -> list[type]:
    """The kernel's dataclasses whose ``__init__`` is written in their module's source
    (the hot records of kernel.records' docstring)."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(kernel.__path__, "kernel."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if not (isinstance(value, type) and dataclasses.is_dataclass(value)
                    and value.__module__ == info.name):
                continue
            init = value.__dict__.get("__init__")
            code = getattr(init, "__code__", None)
            if code is not None and code.co_filename == inspect.getsourcefile(value):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


_OWN_INIT = _kernel_classes_with_own_init()


def test_the_hot_records_are_among_those_checked() -> None:
    names = {cls.__name__ for cls in _OWN_INIT}
    assert {"FrameCap", "InvocationArgs", "PTSlot", "ReplyCap", "Blocking"} <= names


@pytest.mark.parametrize("cls", _OWN_INIT, ids=lambda cls: cls.__qualname__)
def test_a_written_out_init_is_the_one_dataclasses_would_write(cls: type) -> None:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    assert not hasattr(cls, "__post_init__")  # a written-out __init__ would not call it
    assert all(f.default_factory is dataclasses.MISSING for f in fields)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [(p.name, p.kind, p.default) for p in parameters] == [
        (f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
         inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
        for f in fields]
    values = [object() for _ in fields]
    made = cls(*values)
    assert [getattr(made, f.name) for f in fields] == values
    by_keyword = cls(**{f.name: v for f, v in zip(fields, values)})
    assert [getattr(by_keyword, f.name) for f in fields] == values
    if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, fields[0].name, None)
