"""The dependency rules between the parts, checked over every module's imports.

Dependencies point inward: serving -> recsys, pricing; training -> recsys, pricing; the shared
kernel (``fairshelf.errors``, ``fairshelf.interpreter_turns``) imports no part. Pricing never
reaches shopper data through recsys, training or serving (the fairness guard's first line of
defence), recommendations do not depend on pricing, and the online server does not carry the
offline trainer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# part -> the parts it must never import (at module level or inside a function).
FORBIDDEN: dict[str, set[str]] = {
    "recsys": {"pricing", "training", "serving"},
    "pricing": {"recsys", "training", "serving"},
    "training": {"serving"},
    "serving": {"training"},
    # Experiment statistics are pure: stores and servers feed them, never the other way.
    "experiments": {"serving", "pricing", "recsys", "training"},
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offenders(part: str, forbidden: set[str]) -> list[str]:
    out = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for name in sorted(_imported_modules(path)):
            if name.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_imports_only_what_it_may(part: str) -> None:
    offenders = _offenders(part, FORBIDDEN[part])
    assert not offenders, "; ".join(offenders)


# The modules of ``fairshelf`` every part may import: they import no part themselves.
KERNEL = ("errors", "interpreter_turns")


@pytest.mark.parametrize("module", KERNEL)
def test_kernel_imports_no_part(module: str) -> None:
    names = _imported_modules(ROOT / "fairshelf" / f"{module}.py")
    parts = {"recsys", "pricing", "training", "serving", "fairshelf"}
    assert not {n for n in names if n.split(".")[0] in parts}


def test_no_part_borrows_the_command_line() -> None:
    offenders = []
    for part in ("recsys", "pricing", "training", "serving"):
        for path in sorted((ROOT / part).rglob("*.py")):
            for name in _imported_modules(path):
                if name.startswith("fairshelf.") and name.removeprefix("fairshelf.") not in KERNEL:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "; ".join(offenders)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def test_training_modules_form_no_import_cycle() -> None:
    paths = sorted((ROOT / "training").rglob("*.py"))
    modules = {_module_name(p): p for p in paths}
    graph = {
        mod: {n for n in _imported_modules(path) if n in modules and n != mod}
        for mod, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(mod: str) -> list[str] | None:
        state[mod] = 1
        stack.append(mod)
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[mod] = 2
        return None

    for mod in sorted(graph):
        if mod not in state and (cycle := visit(mod)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
