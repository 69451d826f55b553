"""Data flows one way through pinrepro (issue 13): a module never imports one that sits above it.

cli renders what the commands return; the commands (lock, verify, doctor, refresh) build on discovery, the
lock-file model and the readers; ``inventory`` only knows image contents; the diff of two locks (lockdiff) is a
model that ``manifest`` and ``summary`` render. Every import counts, also one inside a function or under
``TYPE_CHECKING``: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pinrepro"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pinrepro module ``path`` imports; ``from a import b`` counts as both ``a`` and ``a.b``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module == "pinrepro" or module.startswith("pinrepro.")}


@functools.cache
def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _reaches(module: str) -> set[str]:
    """Every pinrepro module ``module`` imports, directly or through others."""
    graph = _graph()
    seen: set[str] = set()
    stack = [module]
    while stack:
        for target in graph.get(stack.pop(), set()):
            if target in graph and target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# (importer, imported): the importer (a module or a package with everything under it) must not import that
# module or anything under it, directly or through another module.
FORBIDDEN = [
    ("pinrepro.verify", "pinrepro.lock"),  # verify checks what lock wrote; the shared sites live in discovery
    ("pinrepro.doctor", "pinrepro.manifest"),  # doctor reads contents (inventory.contents), not their rendering
    ("pinrepro.inventory", "pinrepro.verify"),
    ("pinrepro.inventory", "pinrepro.lock"),
    ("pinrepro.inventory", "pinrepro.refresh"),
    ("pinrepro.inventory", "pinrepro.doctor"),
    ("pinrepro.inventory", "pinrepro.manifest"),
    ("pinrepro.inventory", "pinrepro.summary"),
    ("pinrepro.lockdiff", "pinrepro.manifest"),  # the model does not know who renders it
    ("pinrepro.lockdiff", "pinrepro.summary"),
    ("pinrepro.lockdiff", "pinrepro.render"),
    ("pinrepro.manifest", "pinrepro.summary"),  # two renderers of one model, side by side
    ("pinrepro.summary", "pinrepro.manifest"),
]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN, ids=[f"{a}-{b}" for a, b in FORBIDDEN])
def test_no_import_against_the_flow(importer: str, imported: str) -> None:
    offenders = sorted(
        f"{module} imports {target}" + ("" if target in _graph()[module] else " (through another module)")
        for module in _graph() if _within(module, importer)
        for target in _reaches(module) if _within(target, imported)
    )
    assert not offenders, offenders


# What reading an image's contents needs: the registry client, references, the lock's model and its table
# validator, file writes.
INVENTORY_MAY_USE = ("pinrepro.inventory", "pinrepro.registry", "pinrepro.reference", "pinrepro.lockfile",
                     "pinrepro.schema", "pinrepro.errors", "pinrepro.fsutil", "pinrepro.scrub", "pinrepro.workers")


def test_inventory_only_knows_image_contents() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module in _graph() if _within(module, "pinrepro.inventory")
        for target in _reaches(module)
        if target != "pinrepro" and not any(_within(target, allowed) for allowed in INVENTORY_MAY_USE)
    )
    assert not offenders, offenders


def test_nothing_below_the_command_line_imports_it() -> None:
    entry = {"pinrepro.cli", "pinrepro.console", "pinrepro.__main__"}
    offenders = sorted(module for module in _graph() if module not in entry
                       and any(_within(target, "pinrepro.cli") for target in _reaches(module)))
    assert not offenders, offenders


def test_the_walker_sees_imports_of_every_form() -> None:
    """The rules above would pass vacuously if the walker missed imports: it finds known ones of each form."""
    graph = _graph()
    assert "pinrepro.render" in graph["pinrepro.cli"]  # from pinrepro import render
    assert "pinrepro.lock" in graph["pinrepro.cli"]  # from pinrepro.lock import run_lock, inside a function
    assert "pinrepro.discovery" in graph["pinrepro.lock"]
    assert "pinrepro.lockdiff" in graph["pinrepro.manifest"]
    assert "pinrepro.inventory.contents" in graph["pinrepro.doctor"]
    assert "pinrepro.lockfile" in graph["pinrepro.inventory.contents"]  # under TYPE_CHECKING
    assert "pinrepro.cli" in graph["pinrepro.console"]
    assert "pinrepro.console" in graph["pinrepro.__main__"]
    assert "pinrepro.lock" in _reaches("pinrepro.__main__")  # through console and cli
