"""dvc.yaml lists, for every stage, every project module its script imports.

DVC reruns a stage only when a listed dependency changes, so a module a stage imports
without listing it (directly, through another project module, or lazily inside a function)
would let an edit to it serve stale results. The imports are read from the source (AST),
not by importing, so optional heavy packages do not matter.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import yaml

from tests.conftest import REPO

PACKAGE = "vskd"


def module_file(module: str, root: Path = REPO) -> Path | None:
    """The project file defining ``module`` (``vskd.x.y``), or None if it is not ours."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a`` and ``a.b`` first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(path: Path, root: Path = REPO) -> set[str]:
    """Project modules ``path`` imports anywhere in its body (module level or inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this file's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from vskd import gaf`` imports the submodule vskd.gaf
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if module_file(name, root) is not None:
                found.add(name)
                found.update(p for p in _parents(name) if module_file(p, root) is not None)
    return found


def import_closure(script: Path, root: Path = REPO) -> set[Path]:
    """Every project file ``script`` runs through imports, transitively (relative paths)."""
    seen: set[str] = set()
    todo = list(imported_modules(script, root))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imported_modules(module_file(module, root), root) - seen)
    return {module_file(m, root).relative_to(root) for m in seen}


def stage_deps(dvc: dict) -> dict[str, list[str]]:
    """stage name -> its listed deps, ``${item}`` left as written (foreach stages)."""
    out = {}
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        out[name] = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
    return out


def covered(path: Path, deps: list[str]) -> bool:
    """A file dep covers itself; a folder dep covers everything under it."""
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


def missing_deps(dvc: dict, root: Path = REPO) -> dict[str, list[str]]:
    """stage -> project files its script imports that dvc.yaml does not list."""
    missing = {}
    for name, deps in stage_deps(dvc).items():
        script = root / "stages" / f"{name}.py"
        needed = {Path("stages") / f"{name}.py"} | import_closure(script, root)
        absent = sorted(str(p) for p in needed if not covered(p, deps))
        if absent:
            missing[name] = absent
    return missing


def _dvc() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_every_stage_lists_every_project_module_it_imports():
    assert missing_deps(_dvc()) == {}


def test_every_stage_has_a_script():
    for name in _dvc()["stages"]:
        assert (REPO / "stages" / f"{name}.py").is_file(), name


def test_a_removed_dep_is_reported():
    dvc = _dvc()
    deps = dvc["stages"]["student"]["do"]["deps"]
    deps.remove("vskd/gaf.py")
    assert missing_deps(dvc)["student"] == ["vskd/gaf.py"]


def test_closure_follows_lazy_and_transitive_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("import numpy\n")
    (pkg / "top.py").write_text("def f():\n    from vskd.sub import leaf\n")
    (pkg / "other.py").write_text("")
    script = tmp_path / "stages" / "s.py"
    script.parent.mkdir()
    script.write_text("from vskd.top import f\n")
    closure = import_closure(script, tmp_path)
    assert closure == {Path("vskd/__init__.py"), Path("vskd/top.py"), Path("vskd/sub/__init__.py"),
                       Path("vskd/sub/leaf.py")}
    dvc = {"stages": {"s": {"cmd": "x", "deps": ["stages/s.py", "vskd/top.py", "vskd/sub"]}}}
    assert missing_deps(dvc, tmp_path) == {"s": ["vskd/__init__.py"]}
    dvc["stages"]["s"]["deps"].append("vskd/__init__.py")
    assert missing_deps(copy.deepcopy(dvc), tmp_path) == {}


def _collapse(files: set[Path], root: Path = REPO) -> list[str]:
    """Files -> dep entries, a folder whose every module is needed listed as the folder."""
    entries, folders = set(), set()
    for f in files:
        folder = f.parent
        if folder != Path(PACKAGE) and {p.relative_to(root) for p in (root / folder).rglob("*.py")} <= files:
            folders.add(folder)
        else:
            entries.add(f)
    return sorted({str(f) for f in folders} | {str(f) for f in entries
                                                 if not any(d in f.parents for d in folders)})


def rewrite_dvc_yaml(root: Path = REPO) -> None:
    """Rewrite each stage's project-module deps in dvc.yaml to its import closure, in place,
    keeping every other line (comments, data and model deps) as written."""
    lines = (root / "dvc.yaml").read_text().splitlines(keepends=True)
    out, stage, in_deps = [], None, False
    for line in lines:
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("   ") and stripped.endswith(":"):
            stage = stripped[:-1]
        if stripped == "deps:":
            in_deps = True
            out.append(line)
            indent = line[: len(line) - len(line.lstrip())] + "  "
            needed = import_closure(root / "stages" / f"{stage}.py", root)
            out.extend(f"{indent}- {entry}\n" for entry in [f"stages/{stage}.py", *_collapse(needed, root)])
            continue
        if in_deps and stripped.startswith("- "):
            entry = stripped[2:].split("#")[0].strip()
            if entry.startswith(PACKAGE + "/") or entry.startswith("stages/"):
                continue  # regenerated above
            out.append(line)
            continue
        in_deps = False
        out.append(line)
    (root / "dvc.yaml").write_text("".join(out))


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        rewrite_dvc_yaml()
    print(missing_deps(_dvc()) or "every stage lists its imports")


def test_package_docstring_lists_every_module():
    import pkgutil

    import vskd

    top = {m.name.split(".")[1] for m in pkgutil.walk_packages(vskd.__path__, "vskd.")} - {"__main__"}
    assert sorted(name for name in top if f"\n    {name} " not in vskd.__doc__) == []
