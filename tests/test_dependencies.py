"""pyproject.toml against the code: every third-party module that ``sdk/`` and ``server/`` import
is declared in the extra that installs it, and every declared dependency is imported.

Where each file belongs: ``sdk/rollwise/analysis/`` to the ``analysis`` extra,
``sdk/rollwise/openfeature.py`` to ``openfeature``, ``sdk/rollwise/aio/`` to ``aio``,
``server/`` to ``server``, the rest of ``sdk/rollwise`` to the base dependencies, which every
extra has too. Module names are mapped to distributions by the installed metadata (``re2`` is
``google-re2``), not by a table of ours.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FIRST_PARTY = {"rollwise", "rollwise_server"}
RUNTIME = ("base", "analysis", "server", "openfeature", "aio", "postgresql", "otel")
# Imported inside ``try: ... except ImportError`` and declared by no extra but ``postgresql``,
# on purpose: the code says what to install when it is missing. Each entry must still be such
# an import.
OPTIONAL = {
    "psycopg": "rollwise.analysis.data.connect opens postgresql:// URLs when it is installed;"
    " the server's store.database_errors() reports its errors",
}


def _load_floors() -> ModuleType:
    spec = importlib.util.spec_from_file_location("floors", ROOT / "scripts" / "floors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floors = _load_floors()


def extra_of(path: Path) -> str:
    """The extra whose installation a source file may rely on."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "server" and parts[-1] not in ("postgres.py", "otel.py"):
        return "server"
    if parts[:3] == ("sdk", "rollwise", "analysis"):
        return "analysis"
    if parts == ("sdk", "rollwise", "openfeature.py"):
        return "openfeature"
    if parts[:3] == ("sdk", "rollwise", "aio"):
        return "aio"
    if parts == ("server", "rollwise_server", "storage", "postgres.py"):
        return "postgresql"
    if parts == ("server", "rollwise_server", "otel.py"):
        return "otel"
    return "base"


def declared(extra: str) -> set[str]:
    """The normalized distribution names that ``extra`` (or ``base``) declares."""
    project = PYPROJECT["project"]
    if extra == "base":
        requirements = project["dependencies"]
    else:
        requirements = project["optional-dependencies"][extra]
    return {floors.normalized(floors.REQUIREMENT.match(r)["name"]) for r in requirements}


def _guarded(tree: ast.Module) -> set[int]:
    """Line numbers of the imports inside a ``try`` that catches ImportError."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            for statement in node.body:
                lines.update(n.lineno for n in ast.walk(statement) if hasattr(n, "lineno"))
    return lines


def imports(path: Path) -> Iterator[tuple[str, bool]]:
    """The top-level module of each absolute import in ``path``, and whether it is guarded."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    guarded = _guarded(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name.partition(".")[0], node.lineno in guarded


def third_party(module: str) -> bool:
    return module not in sys.stdlib_module_names and module not in FIRST_PARTY


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions(module: str) -> set[str]:
    """The distributions that install ``module``, by their metadata."""
    found = _installed().get(module)
    assert found, f"{module}: imported, but no installed distribution provides it"
    return {floors.normalized(name) for name in found}


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@functools.cache
def used_by_extra() -> dict[str, dict[str, set[str]]]:
    """For each extra, its files' third-party modules (unguarded, or guarded) by file."""
    used: dict[str, dict[str, set[str]]] = {extra: {} for extra in RUNTIME}
    for path in sources("sdk", "server"):
        for module, guarded in imports(path):
            if third_party(module):
                key = f"{module} (guarded)" if guarded else module
                used[extra_of(path)].setdefault(key, set()).add(str(path.relative_to(ROOT)))
    return used


def test_every_runtime_dependency_has_one_floor() -> None:
    pins = floors.floors(PYPROJECT, [extra for extra in RUNTIME if extra != "base"])
    assert set(pins) == set().union(*(declared(extra) for extra in RUNTIME))
    with pytest.raises(ValueError, match="needs exactly one '>=' floor"):
        floors.floor("requests<3")
    assert floors.floor("uvicorn[standard]>=0.50") == ("uvicorn", "0.50")
    assert floors.floor("google-re2>=1.1,<2") == ("google-re2", "1.1")


@pytest.mark.parametrize("extra", RUNTIME)
def test_each_import_is_declared_where_its_file_is_installed(extra: str) -> None:
    allowed = declared("base") | declared(extra)
    for key, files in used_by_extra()[extra].items():
        module, _, guarded = key.partition(" ")
        if guarded and module in OPTIONAL:
            continue
        assert distributions(module) & allowed, (
            f"{module} (imported by {sorted(files)}) is installed by "
            f"{sorted(distributions(module))}, which the {extra} dependencies do not declare"
        )


@pytest.mark.parametrize("extra", RUNTIME)
def test_each_declared_dependency_is_imported_by_its_extra(extra: str) -> None:
    modules = {key.partition(" ")[0] for key in used_by_extra()[extra]}
    provided = set().union(*(distributions(m) for m in modules)) if modules else set()
    unused = declared(extra) - provided
    assert not unused, f"{extra} declares {sorted(unused)}, which none of its files import"


def test_optional_imports_are_still_guarded_and_undeclared() -> None:
    guarded = {
        key.partition(" ")[0]
        for by_key in used_by_extra().values()
        for key in by_key
        if key.endswith("(guarded)")
    }
    everything = set().union(*(declared(extra) for extra in RUNTIME if extra != "postgresql"))
    for module in OPTIONAL:
        assert module in guarded, f"{module}: listed as optional, but no guarded import of it"
        assert not distributions(module) & everything, f"{module}: optional, yet declared"


def _module_level_imports(path: Path) -> Iterator[str]:
    """Dotted names imported when ``path`` is imported (not in functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    pending.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])


def _file_of(name: str) -> Path | None:
    for top in ("sdk", "server"):
        base = ROOT / top / Path(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def test_the_server_imports_no_analysis_only_module_at_import_time() -> None:
    """The server uses parts of rollwise.analysis; loading them needs no analysis extra."""
    seen: set[Path] = set()
    pending = sources("server")
    third: dict[str, Path] = {}
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _module_level_imports(path):
            top = name.partition(".")[0]
            if top in FIRST_PARTY:
                found = _file_of(name)
                pending += [found] if found is not None else []
                parent = _file_of(name.rpartition(".")[0]) if "." in name else None
                pending += [parent] if parent is not None else []
            elif third_party(top):
                third.setdefault(top, path)
    assert any(p.parts[-2] == "analysis" for p in seen), "the walk should reach rollwise.analysis"
    allowed = declared("base") | declared("server")
    for module, path in third.items():
        assert distributions(module) & allowed, (
            f"{module}, imported by {path.relative_to(ROOT)} when the server starts, "
            "is not a server or base dependency"
        )


def test_tests_and_scripts_import_only_declared_distributions() -> None:
    everything = set().union(*(declared(extra) for extra in (*RUNTIME, "dev")))
    for path in [*sources("tests", "scripts"), ROOT / "conftest.py"]:
        for module, _ in imports(path):
            if third_party(module) and module not in {"tests", "conftest"}:
                assert distributions(module) & everything, (
                    f"{module} (imported by {path.relative_to(ROOT)}) is declared nowhere"
                )
