"""``dataclass``: ``dataclasses.dataclass``, with classes created without compiling methods.

The kernel defines some two hundred dataclasses (caps, faults, errors, invocations), and
``dataclasses`` compiles the source of up to six methods for each one when the class is
created: on Python 3.11 that was over half the time a fresh interpreter took to import
the kernel and boot a root task. Most of those methods are never called in a given run.

For a class that gives no options but ``frozen``, ``slots`` and ``eq``, this
``dataclass`` leaves the fields (and the slots class) to ``dataclasses`` and creates
``__init__``, ``__repr__``, ``__eq__`` and ``__hash__`` on the class's first call of each
instead. The method then compiled is the one ``dataclasses`` writes (the same text, so
the same speed), and it replaces the placeholder in the class, so later calls go
straight to it. A frozen class's ``__setattr__`` and ``__delattr__``, which only ever
raise, are plain functions, as ``dataclasses`` has them but for the compiling; it pickles
as :mod:`kernel.pickling` says (a call of its class with its field values), the same form
whether the kernel is compiled or not. What a caller observes is otherwise what
``dataclasses.dataclass`` gives: ``fields``, ``replace``, ``asdict`` and
``__dataclass_params__`` see an ordinary dataclass. Any other class (other options,
``InitVar`` or keyword-only fields) goes to ``dataclasses.dataclass`` as it is.

To mypy, and so to mypyc, this module's ``dataclass`` *is* ``dataclasses.dataclass``:
mypyc compiles a class with that decorator into a native class. At import, though, mypyc
still calls the decorator this module's name holds on each native class (to add the
methods ``dataclasses`` generates), and keeps the class it made, not the one the
decorator returns. So the compiled kernel puts :func:`_dataclass` in place as well, and a
native class (one with mypyc's ``__mypyc_attrs__``) receives the fields and placeholders
itself: ``dataclasses`` is asked for no slots copy, its layout being fixed already.
Compiling those methods at import took half the time a compiled kernel's modules took
to load.

**Hot records write their ``__init__`` out.** mypyc compiles a dataclass's fields but
not the methods ``dataclasses`` generates at run time (mypyc/mypyc#817, open): those stay
interpreted, and a generated ``__init__`` of a frozen class made a compiled kernel spend
more on building a record than on using it (0.40 µs for three fields against 0.03 µs
compiled). The records built at every Page Map, Retype, IPC or invocation therefore
define ``__init__`` in the class body, one ``object.__setattr__(self, "field", field)``
per field in field order with the field's default, which is what ``dataclasses`` would
write and what mypyc compiles into direct stores. ``dataclasses`` keeps an explicit
``__init__``; everything else stays generated. ``tests/unit/test_records.py`` checks
every such ``__init__`` against its class's fields.
"""

from __future__ import annotations

import dataclasses
import reprlib
import sys
from collections.abc import Callable
from dataclasses import dataclass as dataclass
from typing import Any, Final, TypeVar

from kernel.pickling import record_reduce

__all__ = ["dataclass"]

_T = TypeVar("_T", bound=type)

_FAST_OPTIONS: Final = frozenset({"frozen", "slots", "eq"})


class _Factory:
    """The default of an ``__init__`` parameter whose field has a default factory."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_DEFAULT_FACTORY: Final = _Factory()


def _dataclass(cls: type | None = None, /, **options: Any) -> Any:
    """``dataclasses.dataclass(cls, **options)``; for ``frozen=True, slots=True`` (and
    ``eq``) the same class made without compiling its methods up front."""
    if cls is None:
        return lambda c: _dataclass(c, **options)
    if options.keys() <= _FAST_OPTIONS and not _special_fields(cls):
        return _process(cls, bool(options.get("eq", True)), bool(options.get("frozen", False)),
                        bool(options.get("slots", False)))
    return dataclasses.dataclass(cls, **options)


def _special_fields(cls: type) -> bool:
    """Whether ``cls`` or a base declares an ``InitVar`` or keyword-only field (left to
    dataclasses)."""
    return any("InitVar" in str(a) or "KW_ONLY" in str(a)
               for klass in cls.__mro__ for a in klass.__dict__.get("__annotations__", {}).values())


def _process(cls: _T, eq: bool, frozen: bool, slots: bool) -> _T:
    own = cls.__dict__
    has_init, has_repr, has_eq = "__init__" in own, "__repr__" in own, "__eq__" in own
    explicit_hash = own.get("__hash__", dataclasses.MISSING)
    has_explicit_hash = not (explicit_hash is dataclasses.MISSING
                             or (explicit_hash is None and has_eq))
    for name in ("__setattr__", "__delattr__") if frozen else ():
        if name in own:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    no_doc = not own.get("__doc__")
    if no_doc:
        cls.__doc__ = cls.__name__  # set below; keeps dataclasses from calling inspect
    # dataclasses is asked for a non-frozen class, so that it does not compile the
    # frozen __setattr__ and __delattr__ (added below); it refuses a non-frozen class
    # with frozen dataclass bases, so theirs say non-frozen for as long as it runs.
    base_params = [b.__dict__["__dataclass_params__"] for b in cls.__mro__[1:]
                   if frozen and "__dataclass_params__" in b.__dict__]
    if not all(p.frozen for p in base_params):
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    for p in base_params:
        p.frozen = False
    try:
        new: Any = dataclasses.dataclass(cls, init=False, repr=False, eq=False, frozen=False,
                                         slots=slots and not _native(cls))
    finally:
        for p in base_params:
            p.frozen = True
    params = new.__dataclass_params__
    params.init, params.repr, params.eq, params.frozen = True, True, eq, frozen
    fields = dataclasses.fields(new)
    init_fields = [f for f in fields if f.init]
    seen_default = False
    for f in init_fields:
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            seen_default = True
    if no_doc:
        new.__doc__ = new.__name__ + _signature_text(init_fields)
    if not has_init:
        new.__init__ = _placeholder(new, "__init__", _init_fn)
    if not has_repr:
        new.__repr__ = _placeholder(new, "__repr__", _repr_fn)
    if eq:
        if not has_eq:
            new.__eq__ = _placeholder(new, "__eq__", _eq_fn)
        if not has_explicit_hash:
            # dataclasses' rule: a frozen class hashes its fields, a mutable one is unhashable.
            new.__hash__ = _placeholder(new, "__hash__", _hash_fn) if frozen else None
    if frozen:
        new.__setattr__, new.__delattr__ = _frozen_set_del_attr(new, fields)
        if "__reduce__" not in own:
            new.__reduce__ = record_reduce
    return new  # type: ignore[no-any-return]


def _native(cls: type) -> bool:
    """Whether ``cls`` is a class compiled by mypyc (its fields are its native layout)."""
    return "__mypyc_attrs__" in cls.__dict__


def _frozen_set_del_attr(cls: type, fields: tuple[dataclasses.Field[Any], ...]
                         ) -> tuple[Callable[..., None], Callable[..., None]]:
    """The ``__setattr__`` and ``__delattr__`` of a frozen dataclass; they only raise (on
    the class's own instances), so they need not be compiled for speed."""
    names = tuple(f.name for f in fields)
    owner: Any = cls  # super() of the class, for instances of a subclass

    def __setattr__(self: Any, name: str, value: object) -> None:  # noqa: N807
        if type(self) is owner or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:  # noqa: N807
        if type(self) is owner or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


def _placeholder(cls: type, name: str,
                 build: Callable[[type], Callable[..., Any]]) -> Callable[..., Any]:
    """A method that compiles the real ``name`` of ``cls``, puts it in the class in its
    own place and returns what it returns."""

    def first_call(self: object, *args: object, **kwargs: object) -> Any:
        method = build(cls)
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, method)
        return method(self, *args, **kwargs)

    first_call.__name__ = name
    first_call.__qualname__ = f"{cls.__qualname__}.{name}"
    return first_call


def _signature_text(fields: list[dataclasses.Field[Any]]) -> str:
    """The text ``dataclasses`` puts in the docstring of a class that has none."""
    params = []
    for f in fields:
        text = f"{f.name}: {_annotation_text(f.type)}"
        if f.default_factory is not dataclasses.MISSING:
            text += " = <factory>"
        elif f.default is not dataclasses.MISSING:
            text += f" = {f.default!r}"
        params.append(text)
    return f"({', '.join(params)})"


def _annotation_text(annotation: object) -> str:
    if isinstance(annotation, type):
        if annotation.__module__ == "builtins":
            return annotation.__qualname__
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation)


def _compile(cls: type, name: str, params: list[str], body: list[str],
             local_values: dict[str, object], returns: str = "") -> Callable[..., Any]:
    """Compile ``def name(args): body`` as ``dataclasses._create_fn`` does: in the
    class's module's globals, with ``local_values`` bound by an enclosing function."""
    module = sys.modules.get(cls.__module__)
    module_globals = module.__dict__ if module is not None else {}
    lines = "\n".join(f"  {line}" for line in body)
    text = (f"def __create_fn__({', '.join(local_values)}):\n"
            f" def {name}({','.join(params)}){returns}:\n{lines}\n return {name}")
    namespace: dict[str, Any] = {}
    # dont_inherit: not this module's ``from __future__ import annotations`` (the
    # annotations are the field types themselves, as dataclasses makes them).
    exec(compile(text, "<string>", "exec", dont_inherit=True), module_globals, namespace)
    method: Callable[..., Any] = namespace["__create_fn__"](**local_values)
    return method


def _init_fn(cls: type) -> Callable[..., Any]:
    fields = dataclasses.fields(cls)
    self_name = "__dataclass_self__" if "self" in {f.name for f in fields} else "self"
    local_values: dict[str, object] = {f"_type_{f.name}": f.type for f in fields}
    local_values["_HAS_DEFAULT_FACTORY"] = _HAS_DEFAULT_FACTORY
    local_values["__dataclass_builtins_object__"] = object
    frozen = cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    slots = "__slots__" in cls.__dict__ or _native(cls)
    params = [self_name]
    body = []
    for f in fields:
        default_name = f"_dflt_{f.name}"
        if f.init:
            param = f"{f.name}:_type_{f.name}"
            if f.default_factory is not dataclasses.MISSING:
                param += "=_HAS_DEFAULT_FACTORY"
            elif f.default is not dataclasses.MISSING:
                param += f"={default_name}"
            params.append(param)
        if f.default_factory is not dataclasses.MISSING:
            local_values[default_name] = f.default_factory
            value = (f"{default_name}() if {f.name} is _HAS_DEFAULT_FACTORY else {f.name}"
                     if f.init else f"{default_name}()")
        elif f.init:
            if f.default is not dataclasses.MISSING:
                local_values[default_name] = f.default
            value = f.name
        elif slots and f.default is not dataclasses.MISSING:
            local_values[default_name] = f.default
            value = default_name
        else:
            continue  # without slots, the class attribute holds the default
        body.append(f"__dataclass_builtins_object__.__setattr__({self_name},{f.name!r},{value})"
                    if frozen else f"{self_name}.{f.name}={value}")
    if hasattr(cls, "__post_init__"):
        body.append(f"{self_name}.__post_init__()")
    local_values["_return_type"] = None
    return _compile(cls, "__init__", params, body or ["pass"], local_values, "->_return_type")


def _tuple_text(obj: str, fields: list[dataclasses.Field[Any]]) -> str:
    if not fields:
        return "()"
    return f"({','.join(f'{obj}.{f.name}' for f in fields)},)"


def _repr_fn(cls: type) -> Callable[..., Any]:
    shown = ", ".join(f"{f.name}={{self.{f.name}!r}}" for f in dataclasses.fields(cls)
                      if f.repr)
    method = _compile(cls, "__repr__", ["self"],
                      [f'return self.__class__.__qualname__ + f"({shown})"'], {})
    return reprlib.recursive_repr()(method)


def _eq_fn(cls: type) -> Callable[..., Any]:
    compared = [f for f in dataclasses.fields(cls) if f.compare]
    return _compile(cls, "__eq__", ["self", "other"], [
        "if other.__class__ is self.__class__:",
        f" return {_tuple_text('self', compared)}=={_tuple_text('other', compared)}",
        "return NotImplemented"], {})


def _hash_fn(cls: type) -> Callable[..., Any]:
    hashed = [f for f in dataclasses.fields(cls) if (f.compare if f.hash is None else f.hash)]
    return _compile(cls, "__hash__", ["self"], [f"return hash({_tuple_text('self', hashed)})"], {})


globals()["dataclass"] = _dataclass  # interpreted or compiled (see the module docstring)
