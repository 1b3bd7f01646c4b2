"""The root task's symbols, from its ELF's symbol table (what the debugger names addresses by).

An image carries the root task's ELF byte for byte (``LoadedImage.elf``), so its
``.symtab`` is there unless the program was stripped. :func:`read_symbols` reads it with
pyelftools (errors converted to :class:`~bootimage.errors.ElfError` at the boundary, as
everywhere in ``bootimage``) into a :class:`SymbolTable`:

- :meth:`SymbolTable.address_of` finds a symbol by name (``main``);
- :meth:`SymbolTable.describe` names an address as ``symbol+offset`` by the function or
  object whose extent (``st_value .. st_value + st_size``) holds it, or failing that by a
  label right at it (assembly labels have no size).

Kept: functions, objects and untyped labels with a name and a non-zero address. Left out:
section and file symbols, the mapping symbols AArch64 objects carry (``$x``, ``$d``) and
the assembler's local labels (``.L...``).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator
from contextlib import contextmanager

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from kernel.records import dataclass

from .errors import ElfError

__all__ = ["Symbol", "SymbolTable", "read_symbols"]

_KEPT_TYPES = frozenset({"STT_FUNC", "STT_OBJECT", "STT_NOTYPE"})


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    address: int
    size: int
    is_function: bool


class SymbolTable:
    """Symbols by name and by address. An empty table (a stripped ELF) names nothing."""

    def __init__(self, symbols: list[Symbol]) -> None:
        self.symbols = sorted(symbols, key=lambda s: (s.address, -s.size, s.name))
        self._sized = [s for s in self.symbols if s.size]
        self._starts = [s.address for s in self._sized]
        self._reach: list[int] = []
        """``_reach[i]``: the highest end of ``_sized[0..i]``; where it stops passing an
        address, no earlier symbol can contain it."""
        for symbol in self._sized:
            end = symbol.address + symbol.size
            self._reach.append(max(end, self._reach[-1]) if self._reach else end)
        self._labels = {s.address: s for s in reversed(self.symbols) if not s.size}
        self._by_name: dict[str, Symbol] = {}
        for symbol in self.symbols:  # a function wins over a label of the same name
            known = self._by_name.get(symbol.name)
            if known is None or (symbol.is_function and not known.is_function):
                self._by_name[symbol.name] = symbol

    def __len__(self) -> int:
        return len(self.symbols)

    def address_of(self, name: str) -> int | None:
        symbol = self._by_name.get(name)
        return None if symbol is None else symbol.address

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def describe(self, address: int) -> str | None:
        """``name`` or ``name+0x10`` for ``address``: the nearest sized symbol that holds
        it, else a label right at it; None when neither exists."""
        index = bisect.bisect_right(self._starts, address) - 1
        while index >= 0 and self._reach[index] > address:
            symbol = self._sized[index]
            if address < symbol.address + symbol.size:
                return _plus(symbol.name, address - symbol.address)
            index -= 1
        label = self._labels.get(address)
        return None if label is None else label.name


def _plus(name: str, offset: int) -> str:
    return name if offset == 0 else f"{name}+{offset:#x}"


def read_symbols(elf: bytes) -> SymbolTable:
    """The symbols of ``elf`` (an ELF that passed :func:`bootimage.elf.read_root_elf`).

    Raises:
        ElfError: the symbol or string table cannot be read.
    """
    found: list[Symbol] = []
    with _pyelftools_boundary():
        ef = ELFFile(io.BytesIO(elf))
        for section in ef.iter_sections():
            if not isinstance(section, SymbolTableSection):
                continue
            for sym in section.iter_symbols():
                kind = sym["st_info"]["type"]
                name = sym.name
                if (kind in _KEPT_TYPES and name and not name.startswith(("$", ".L"))
                        and sym["st_value"] and sym["st_shndx"] != "SHN_UNDEF"):
                    found.append(Symbol(name, sym["st_value"], sym["st_size"],
                                        kind == "STT_FUNC"))
    return SymbolTable(found)


@contextmanager
def _pyelftools_boundary() -> Iterator[None]:
    """Turn pyelftools' parse errors into one ``ElfError`` line.

    pyelftools signals malformed input with ``ELFError`` (``struct_parse`` wraps
    construct's errors in ``ELFParseError``); ``ConstructError`` covers any path that
    does not go through ``struct_parse``.
    """
    try:
        yield
    except (ELFError, ConstructError) as err:
        raise ElfError(f"bad ELF: {err}") from err
