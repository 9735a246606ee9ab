"""Package layering: imports go eventlog -> routilux -> replay_tools, never into another's private parts.

Every module of the three packages is parsed (imports inside functions included) and
checked against two rules:

1. a package imports only itself and lower layers (``eventlog`` knows nothing of
   workflows; ``routilux`` nothing of the tools);
2. no package imports another package's private modules (``eventlog._frame``) or private
   names (``from eventlog.postgres import _redact``), or reaches them as attributes of an
   imported module (``eventlog._events``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"eventlog": 0, "routilux": 1, "replay_tools": 2}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names; a relative import stays in its own package."""
    if node.level:
        return module.split(".")[0]
    return node.module or ""


def violations(module: str, source: str) -> list[str]:
    """Every layering violation in ``source``, the code of ``module`` (e.g. ``routilux.job_state``)."""
    own = module.split(".")[0]
    tree = ast.parse(source)
    found: list[str] = []
    imported_modules: dict[str, str] = {}  # local name -> foreign module it stands for

    def check(target: str, line: int, names: list[str]) -> None:
        top = target.split(".")[0]
        if top not in LAYERS or top == own:
            return
        if LAYERS[top] > LAYERS[own]:
            found.append(f"{module}:{line}: imports {target} (a higher layer than {own})")
        private = [p for p in target.split(".")[1:] if p.startswith("_")]
        if private:
            found.append(f"{module}:{line}: imports {target} (a private module of {top})")
        for name in names:
            if name.startswith("_") and name != "__version__":
                found.append(f"{module}:{line}: imports {target}.{name} (a private name of {top})")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(alias.name, node.lineno, [])
                local = alias.asname or alias.name.split(".")[0]
                imported_modules[local] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            check(target, node.lineno, [a.name for a in node.names])
            for alias in node.names:
                imported_modules[alias.asname or alias.name] = f"{target}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_"):
            target = imported_modules.get(node.value.id)
            if target is not None and not node.attr.startswith("__"):
                top = target.split(".")[0]
                if top in LAYERS and top != own:
                    found.append(f"{module}:{node.lineno}: uses {target}.{node.attr} (private to {top})")
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            out.append((_module_name(path), path))
    return out


def test_packages_respect_the_layers_and_each_others_private_parts() -> None:
    """No module imports a higher layer or another package's private module, name or attribute."""
    problems = []
    for module, path in _modules():
        problems.extend(violations(module, path.read_text(encoding="utf-8")))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "words"),
    [
        ("routilux.job_state", "from eventlog._events import encode_event", "private module"),
        ("routilux.job_state", "import eventlog._frame", "private module"),
        ("replay_tools.source", "from eventlog.postgres import _redact", "private name"),
        ("routilux.x", "import eventlog\nx = eventlog._events", "private to eventlog"),
        ("eventlog.memory", "from routilux.projection import apply", "higher layer"),
        ("routilux.job_state", "def f():\n    from replay_tools import cli", "higher layer"),
        ("eventlog.memory", "from .encoding import _pack_nested", None),  # its own private parts: fine
        ("replay_tools.cli", "from routilux.job_state import JobState", None),
    ],
)
def test_the_checker_finds_each_kind_of_violation(module: str, source: str, words: str | None) -> None:
    """The rules above, applied to small sources: each violation is reported, allowed imports are not."""
    found = violations(module, source)
    if words is None:
        assert found == []
    else:
        assert len(found) == 1 and words in found[0], found
