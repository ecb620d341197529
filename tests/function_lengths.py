"""The longest functions of vskd/ and stages/, read from the source (AST), methods included.

    python -m tests.function_lengths            # the 20 longest
    python -m tests.function_lengths --top 8

A function's length is ``end_lineno - lineno + 1``: from its ``def`` line (decorators not
counted) to its last line, docstring and nested functions included. The project keeps every
function under :data:`LIMIT` lines so that one fits on a screen (tests/test_function_lengths.py).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("vskd", "stages")
LIMIT = 60


def function_lengths(root: Path = REPO, folders=FOLDERS) -> list[tuple[int, str]]:
    """(lines, ``path:line name``) of every function and method, longest first."""
    out = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    where = f"{path.relative_to(root)}:{node.lineno} {node.name}"
                    out.append((node.end_lineno - node.lineno + 1, where))
    return sorted(out, key=lambda item: (-item[0], item[1]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.function_lengths", description=__doc__.split("\n\n")[0])
    p.add_argument("--top", type=int, default=20, help="how many to list (default 20)")
    args = p.parse_args(argv)
    for lines, where in function_lengths()[: args.top]:
        print(f"{lines:4d}  {where}")


if __name__ == "__main__":
    main()
