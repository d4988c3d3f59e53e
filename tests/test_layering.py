"""The package's architecture, checked: dependencies point inward, core/ does no I/O, nothing imports
a command, and no two modules import each other, however indirectly. Read from the source with
`ast`, so a lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "specflowd"

# What each folder may import from specflowd (besides itself and the shared top-level modules).
ALLOWED = {
    "core": set(),
    "repo": {"core"},
    "agents": {"core"},
    "daemon": {"core", "repo", "agents"},
    "views": {"core", "repo", "daemon.statefile", "daemon.pidlock"},
    "ops": {"core", "repo", "views", "daemon.pidlock", "daemon.statefile"},
    "commands": {"core", "repo", "agents", "daemon", "views", "ops"},
}
SHARED = {"errors", "fsio", "cli", "program", "__main__", "__init__"}  # specflowd/<name>.py
# The pure core reads no files, runs no processes, watches nothing and prints nothing.
CORE_FORBIDS = {"os", "subprocess", "shutil", "socket", "signal", "threading", "pathlib", "importlib", "tempfile",
                "fcntl", "select", "time", "io", "watchdog", "click", "rich", "git", "gitdb", "specflowd.fsio"}


def modules() -> dict[str, Path]:
    """Dotted name (without `specflowd.`) -> file, for every module of the package."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it, as absolute dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            found.add(node.module)
            # `from specflowd.repo import git` imports the module specflowd.repo.git
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def internal(name: str, known: dict[str, Path]) -> str | None:
    """The specflowd module an import names, without the prefix; None for anything else."""
    if not name.startswith("specflowd."):
        return None
    short = name.removeprefix("specflowd.")
    return short if short in known else None


def folder(module: str) -> str:
    return module.split(".")[0]


def test_every_folder_has_a_rule_and_says_what_it_is_for() -> None:
    for sub in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        assert sub.name in ALLOWED, f"{sub.name}/ has no layering rule"
        doc = ast.get_docstring(ast.parse((sub / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"{sub.name}/__init__.py does not say what the folder is for"


@pytest.mark.parametrize("module", sorted(modules()))
def test_dependencies_point_inward(module: str) -> None:
    known = modules()
    home = folder(module)
    if module in SHARED:
        return
    allowed = ALLOWED[home]
    for name in imports(known[module]):
        target = internal(name, known)
        if target is None or target in SHARED or folder(target) == home:
            continue
        assert folder(target) in allowed or target in allowed, f"{module} imports {target}"


@pytest.mark.parametrize("module", sorted(m for m in modules() if folder(m) == "core"))
def test_the_core_does_no_io(module: str) -> None:
    known = modules()
    for name in imports(known[module]):
        root = name.split(".")[0]
        assert root not in CORE_FORBIDS and name not in CORE_FORBIDS, f"{module} imports {name}"
        target = internal(name, known)
        if name.startswith("specflowd.") and target is not None:
            assert folder(target) == "core" or target == "errors", f"{module} imports {name}"


def test_nothing_imports_a_command() -> None:
    known = modules()
    for module, path in known.items():
        if folder(module) == "commands" or module == "cli":
            continue
        for name in imports(path):
            assert not name.startswith("specflowd.commands"), f"{module} imports {name}"


def test_no_import_cycles() -> None:
    known = modules()
    graph = {m: {t for n in imports(p) if (t := internal(n, known)) and t != m} for m, p in known.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_every_command_is_listed_and_every_listed_command_exists() -> None:
    from specflowd.cli import COMMANDS, HIDDEN

    files = {p.stem for p in (PACKAGE / "commands").glob("*.py")} - {"__init__"}
    assert files == set(COMMANDS) | HIDDEN
