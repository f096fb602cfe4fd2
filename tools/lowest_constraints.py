"""Write pip constraints pinning every dependency of pyproject.toml to its lower bound.

pip has no ``--resolution lowest``; ``make test-oldest`` installs the project with these
constraints instead, so the lowest declared versions are the ones tested. Usage::

    python tools/lowest_constraints.py [--extra dev] [--skip torch] > constraints.txt

Every dependency must declare a ``>=`` lower bound (the script fails naming the one that
does not): a range without a floor cannot be tested at its bottom.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def lower_bounds(requirements: list[str], *, skip: set[str] = frozenset()) -> list[str]:
    """``name==X`` for each requirement's ``>=X`` (in the order given); ``skip`` names are left out."""
    out = []
    for req in requirements:
        m = _REQ.match(req)
        if m is None:
            raise ValueError(f"pyproject.toml: cannot read requirement {req!r}")
        name, spec = m.group(1), m.group(3)
        if name.lower() in skip:
            continue
        floors = [c.strip()[2:].strip() for c in spec.split(",") if c.strip().startswith(">=")]
        if len(floors) != 1:
            raise ValueError(f"pyproject.toml: requirement {req!r} has no single '>=' lower bound")
        out.append(f"{name}=={floors[0]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", default=str(ROOT / "pyproject.toml"))
    parser.add_argument("--extra", action="append", default=[], help="also pin this optional-dependency group")
    parser.add_argument("--skip", action="append", default=[], help="leave this package out (installed otherwise)")
    args = parser.parse_args(argv)
    project = tomllib.loads(Path(args.pyproject).read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    for extra in args.extra:
        reqs += project.get("optional-dependencies", {})[extra]
    lines = lower_bounds(reqs, skip={s.lower() for s in args.skip})
    sys.stdout.write("# lowest declared versions, from pyproject.toml (tools/lowest_constraints.py)\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
