"""Print the floors of pyproject.toml as a pip constraints file (``name==floor``, one a line).

    python3 scripts/floors.py server analysis openfeature > constraints.txt
    python3 scripts/floors.py --dev pytest hypothesis > tools.txt   # those dev requirements

The floor of a requirement is the version of its ``>=`` clause; every dependency of the base
and of the named extras must have one (a requirement without a floor is an error: exit 1).
``scripts/test-floors`` installs against the output, so that the tests run on the lowest
versions that ``pip install rollwise[...]`` allows. Only direct dependencies are pinned: what
they need in turn resolves as it would for a user. Standard library only (``tomllib``): it
runs before the venv it prepares exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<specifiers>[^;]*)(?:;.*)?$"
)
FLOOR = re.compile(r"^>=\s*(?P<version>[0-9][A-Za-z0-9.+!-]*)$")


def normalized(name: str) -> str:
    """The PEP 503 form of a distribution name (``Prometheus_Client`` -> ``prometheus-client``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def floor(requirement: str) -> tuple[str, str]:
    """The normalized name of ``requirement`` and the version of its ``>=`` clause."""
    match = REQUIREMENT.match(requirement.strip())
    if match is None:
        raise ValueError(f"{requirement!r}: not a requirement this script can read")
    clauses = [c.strip() for c in match["specifiers"].split(",") if c.strip()]
    floors = [m["version"] for m in map(FLOOR.match, clauses) if m is not None]
    if len(floors) != 1:
        raise ValueError(f"{requirement!r}: needs exactly one '>=' floor")
    return normalized(match["name"]), floors[0]


def floors(pyproject: dict[str, object], extras: list[str]) -> dict[str, str]:
    """The floor of every dependency of the base and of ``extras``, by normalized name."""
    project: Any = pyproject["project"]
    optional = project["optional-dependencies"]
    requirements = list(project["dependencies"])
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"{extra!r}: no such extra in pyproject.toml")
        requirements += optional[extra]
    found: dict[str, str] = {}
    for requirement in requirements:
        name, version = floor(requirement)
        if found.setdefault(name, version) != version:
            raise ValueError(f"{name}: two different floors, {found[name]} and {version}")
    return found


def dev(pyproject: dict[str, object], names: list[str]) -> list[str]:
    """The ``dev`` extra's requirements for ``names`` (the test tools, at the project's pins)."""
    project: Any = pyproject["project"]
    by_name = {}
    for requirement in project["optional-dependencies"]["dev"]:
        match = REQUIREMENT.match(requirement)
        if match is not None:
            by_name[normalized(match["name"])] = requirement
    missing = [name for name in names if normalized(name) not in by_name]
    if missing:
        raise ValueError(f"not in the dev extra: {', '.join(missing)}")
    return [by_name[normalized(name)] for name in names]


def main(argv: list[str]) -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    try:
        if argv[:1] == ["--dev"]:
            lines = dev(pyproject, argv[1:])
        else:
            lines = [
                f"{name}=={version}" for name, version in sorted(floors(pyproject, argv).items())
            ]
    except ValueError as exc:
        print(f"floors: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
