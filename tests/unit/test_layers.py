"""The kernel's structure: layers without cycles, no hidden imports, registries complete.

DESIGN.md ("Layers"): a lower layer never imports a higher one (the import-linter
contract in pyproject.toml, type-only imports included), no module imports inside a
function, and the tables that drive the kernel (finalisers, decoders) are built in one
place, so they are complete whichever module a program imports first.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "kernel"


def test_the_layers_contract_is_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kernel layers KEPT" in result.stdout


def test_no_module_of_the_kernel_imports_inside_a_function() -> None:
    hidden = []
    for path in sorted(KERNEL.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(function)
                           if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert hidden == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_kernel_imports_without_cycles_at_run_time() -> None:
    """What a compiled kernel (mypyc) and import order need: no module waits, while it
    loads, for another that waits for it. Type-only imports may point both ways inside
    one layer (a TCB names its endpoint, an endpoint queues TCBs); the layers contract
    still holds for them."""
    graph = grimp.build_graph("kernel", exclude_type_checking_imports=True, cache_dir=None)
    edges = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


EXPECTED_FINALISERS = sorted([
    "ASIDPoolCap", "CNodeCap", "CapPageCap", "EndpointCap", "FrameCap", "NotificationCap",
    "PageTableCap", "ReplyObjectCap", "SchedContextCap", "ThreadCap", "VSpaceCap",
    "ZombieCap",
])
EXPECTED_DECODERS = sorted([
    "ASIDControlCap", "ASIDPoolCap", "CNodeCap", "CapPageCap", "CheckpointCap", "DomainCap",
    "FrameCap",
    "PageTableCap", "ReplyCap", "SchedContextCap", "SchedControlCap",
    "ThreadCap", "UntypedCap", "VSpaceCap",
])


@pytest.mark.parametrize("first", [
    "kernel.objects.deletion", "kernel.cspace.cdt", "kernel.objects.frame",
    "kernel.objects.page_table", "kernel.objects.asid_pool", "kernel.entry.dispatch",
])
def test_registries_are_complete_whatever_is_imported_first(first: str) -> None:
    program = (
        f"import {first}\n"
        "from kernel.objects.deletion import FINALISERS\n"
        "from kernel.entry.dispatch import DECODERS\n"
        "print(sorted(t.__name__ for t in FINALISERS))\n"
        "print(sorted(t.__name__ for t in DECODERS))\n"
    )
    # Importing the table modules after ``first`` must not add entries: check the
    # finaliser table right after ``first`` alone, too.
    alone = (
        f"import sys; import {first}\n"
        "table = sys.modules.get('kernel.objects.deletion')\n"
        "print(sorted(t.__name__ for t in table.FINALISERS) if table else None)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == [repr(EXPECTED_FINALISERS), repr(EXPECTED_DECODERS)]
    first_only = subprocess.run([sys.executable, "-c", alone], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    assert first_only in ("None", repr(EXPECTED_FINALISERS))
