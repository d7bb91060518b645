#!/usr/bin/env python3
"""Lint and type-check the project: ruff (no findings allowed) and mypy (no error beyond the
recorded baseline, and the baseline only shrinks).

    python scripts/lint.py                    # both, as the test command runs them
    python scripts/lint.py --update-baseline  # rewrite scripts/mypy-baseline.txt after fixing errors

ruff's rules are in pyproject.toml ([tool.ruff]). mypy cannot follow the install-time package
mapping (`runners/` installs as `ctbench.runners`, see ctbench/project.py), so it checks a tree
of symbolic links laid out as the installed package, and its paths are mapped back to the
checkout. A baseline entry is `path: [code] message` without the line number, so unrelated edits
above an old error do not break the check; a fixed error must leave the baseline too
(`--update-baseline`), so the count never grows back.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scripts" / "mypy-baseline.txt"
GENERATED = "ctbench/v1"  # protoc output, byte-identical to what grpcio-tools emits
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[a-z-]+)\]$")


def package_tree(dest: Path) -> Path:
    """Lay the checkout out as the installed `ctbench` package, with symbolic links."""
    sys.path.insert(0, str(REPO / "ctbench"))
    from project import PACKAGE_ROOTS  # standard library only; see its docstring

    top = dest / "ctbench"
    top.mkdir()
    for entry in (REPO / "ctbench").iterdir():
        if entry.name not in {"__pycache__", "_project"}:
            (top / entry.name).symlink_to(entry)
    for package, folder in PACKAGE_ROOTS.items():
        if package != "ctbench":
            (top / package.split(".", 1)[1]).symlink_to(REPO / folder)
    return top


def mypy_errors(python: str) -> list[str]:
    """mypy's errors as baseline entries (`path: [code] message`), paths in the checkout."""
    with tempfile.TemporaryDirectory(prefix="ctbench-mypy-") as tmp:
        top = package_tree(Path(tmp))
        cache = REPO / ".mypy_cache"
        result = subprocess.run(
            [python, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache),
             "--no-error-summary", "--show-error-codes", "--no-pretty", "-p", "ctbench"],
            cwd=tmp, capture_output=True, text=True, check=False,
        )
        if result.returncode not in (0, 1):
            raise SystemExit(f"mypy failed to run (exit {result.returncode}):\n{result.stderr or result.stdout}")
        return entries(result.stdout, top)


def entries(output: str, top: Path) -> list[str]:
    """Baseline entries from mypy's output lines; `top` is the linked tree's `ctbench` folder."""
    found = []
    for line in output.splitlines():
        match = ERROR.match(line.strip())
        if not match:
            continue
        found.append(f"{checkout_path(match['path'], top)}: [{match['code']}] {match['message']}")
    return sorted(found)


def checkout_path(path: str, top: Path) -> str:
    """`ctbench/runners/x.py` (linked tree) -> `runners/x.py` (checkout)."""
    linked = Path(path) if Path(path).is_absolute() else top.parent / path
    return os.path.relpath(os.path.realpath(linked), REPO)


def compare(found: list[str], baseline: list[str]) -> tuple[list[str], list[str]]:
    """(new errors, baseline entries that no longer occur), counting repeats."""
    have, allowed = Counter(found), Counter(baseline)
    return sorted((have - allowed).elements()), sorted((allowed - have).elements())


def read_baseline() -> list[str]:
    if not BASELINE.is_file():
        return []
    return [line for line in BASELINE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def write_baseline(found: list[str]) -> None:
    header = ("# mypy errors not yet fixed (scripts/lint.py); this list may only shrink.\n"
              "# Regenerate after fixing some: python scripts/lint.py --update-baseline\n")
    BASELINE.write_text(header + "".join(f"{line}\n" for line in found), encoding="utf-8")


def run_ruff(python: str) -> int:
    return subprocess.run([python, "-m", "ruff", "check", "--quiet", str(REPO)], cwd=REPO, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update-baseline", action="store_true", help="rewrite the mypy baseline")
    parser.add_argument("--python", default=os.environ.get("PYTHON", sys.executable),
                        help="the interpreter whose ruff and mypy run (default: $PYTHON or this one)")
    args = parser.parse_args(argv)

    failed = False
    if run_ruff(args.python) != 0:
        print("lint: ruff found problems (above); `ruff check --fix` fixes most", file=sys.stderr)
        failed = True
    found = mypy_errors(args.python)
    if args.update_baseline:
        write_baseline(found)
        print(f"lint: wrote {len(found)} entries to {BASELINE.relative_to(REPO)}")
        return 1 if failed else 0
    new, fixed = compare(found, read_baseline())
    for line in new:
        print(f"mypy: new error: {line}", file=sys.stderr)
    if fixed:
        print(f"lint: {len(fixed)} baseline entr{'y' if len(fixed) == 1 else 'ies'} no longer occur; "
              "shrink the baseline: python scripts/lint.py --update-baseline", file=sys.stderr)
        for line in fixed:
            print(f"mypy: fixed: {line}", file=sys.stderr)
    if new or fixed:
        failed = True
    print(f"lint: ruff {'failed' if failed and not new and not fixed else 'ok' if not failed else 'see above'}; "
          f"mypy {len(found)} known error(s), {len(new)} new, {len(fixed)} fixed but still listed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
