"""The import layering ARCHITECTURE.md describes, checked on the source with `ast` (nothing is imported).

Rooms and what each may import of ours: `modeling` nothing (its files are copied into every checkpoint as
remote code, so it uses flat sibling imports only); `tokenization` and `hub_cards` nothing but themselves;
`training` everything. Code imports the rooms by their installed names (`openbert.<room>`) or relatively, never
by the bare folder name: `modeling` and `openbert.modeling` would be two copies of every class.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("modeling", "tokenization", "training", "hub_cards")
MAY_IMPORT = {
    "modeling": set(),
    "tokenization": set(),
    "hub_cards": set(),
    "training": {"modeling", "tokenization", "hub_cards"},
}


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> list[tuple[int, int, str]]:
    """`(line, relative level, module)` for every import statement of `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, 0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.level, node.module or ""))
    return found


def room_of(path: Path, level: int, module: str) -> str | None:
    """The room an import reaches (`None` for anything not ours); bare room names are reported as `bare:<room>`."""
    if level:
        package = path.relative_to(ROOT).parts[:-1]
        target = [*package[: len(package) - level + 1], *filter(None, module.split("."))]
        return target[0] if target else "openbert"
    top, _, rest = module.partition(".")
    if top in ROOMS:
        return f"bare:{top}"
    if top == "openbert":
        return rest.partition(".")[0] or "openbert"
    return None


@pytest.mark.parametrize("room", ROOMS)
def test_rooms_import_only_what_the_layering_allows(room):
    allowed = MAY_IMPORT[room] | {room}
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {'.' * level}{module}"
             for path in python_files(room) for line, level, module in imports(path)
             if (reached := room_of(path, level, module)) is not None and reached not in allowed]
    assert not wrong, "\n".join(wrong)


def test_modeling_uses_flat_sibling_imports_only():
    """`save_pretrained` copies the modeling files with their `from .x import` siblings; deeper forms break loading."""
    deeper = [f"{path.name}:{line}" for path in python_files("modeling") for line, level, module in imports(path)
              if level > 1 or (level == 1 and "." in module)]
    assert not deeper, deeper


def test_the_openbert_package_imports_the_model_only():
    root = ROOT / "__init__.py"  # installed as `openbert/__init__.py`
    # Of ours, only the model (the standard library, e.g. `os` for the OpenMP setting, reaches no room: None).
    assert {room_of(root, level, module) for _, level, module in imports(root)} - {None} == {"modeling"}


@pytest.mark.parametrize("folder", ["tests", "benchmarks"])
def test_tests_and_benchmarks_use_the_installed_names(folder):
    bare = [f"{path.name}:{line} imports {module}" for path in python_files(folder)
            for line, level, module in imports(path) if module.partition(".")[0] in ROOMS]
    assert not bare, bare


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("", None), ("ACTIVE", "ACTIVE")])
def test_import_sets_the_openmp_wait_policy_only_when_unchosen(given, expected):
    """`import openbert` before torch: threads sleep unless the user chose a policy; an empty value means OpenMP's
    own default, which reaches OpenMP as unset (GNU OpenMP warns on an empty value)."""
    env = {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = ("import os, openbert, torch; torch.ones(64, 64) @ torch.ones(64, 64); "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.split()[-1] == str(expected)
    assert "Invalid value" not in result.stderr
