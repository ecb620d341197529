"""The paper's tables as presets: one committed YAML file per table under ``vskd/presets/``,
turned into the ``dvc exp run -n NAME -S KEY=VALUE ...`` commands that reproduce it.

A preset file holds

* ``title``: what it reproduces;
* ``base``: another preset whose ``set`` applies first (``paper``: the paper's scale);
* ``set``: ``params.yaml`` overrides (dotted keys, as ``dvc exp run -S``) for every run;
* ``needs``: keys that must be given a value (a local copy of a dataset that cannot be
  downloaded), checked before anything runs;
* ``runs``: one named experiment per table row family, each with its own overrides.

Overrides apply in that order, then the user's ``-S``. Every run's final params are validated
with :func:`vskd.params.validate` before the first ``dvc exp run`` starts, so a typo fails in
a second here rather than after hours on a GPU. The commands are plain ``dvc exp run``:
``dvc exp show``, ``dvc metrics diff`` and ``python -m vskd report`` read them as any other.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vskd.params import ParamsError, get, load_params, set_dotted, validate

PRESETS = Path(__file__).with_name("presets")


@dataclass(frozen=True)
class Run:
    """One experiment of a preset: its name and every override, in the order they apply."""

    name: str
    overrides: dict[str, Any]

    def command(self, queue: bool = False) -> list[str]:
        sets = [arg for key, value in self.overrides.items() for arg in ("-S", f"{key}={hydra_value(value)}")]
        return ["dvc", "exp", "run", *(["--queue"] if queue else []), "-n", self.name, *sets]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (VALUE read as YAML) -> ``{KEY: value}``, as ``-S`` takes them."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"-S {item!r}: expected KEY=VALUE, e.g. -S utd_mhad.video.source=skeleton")
        out[key.strip()] = yaml.safe_load(value)
    return out


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def preset_overrides(name: str | None) -> list[str]:
    """A preset's ``set`` (after its base's) as ``-S`` arguments; none without a name."""
    return override_args(shared_overrides(name)) if name else []


def table_presets() -> list[str]:
    """The presets with ``runs`` (a table's experiments); the others are bases and recipes."""
    return [n for n in preset_names() if read_preset(n).get("runs")]


def override_args(overrides: dict[str, Any]) -> list[str]:
    """``{KEY: value}`` -> ``["KEY=VALUE", ...]`` that :func:`parse_overrides` reads back to the
    same values (a string bare where YAML reads it as itself, anything else as JSON)."""
    def text(value):
        if isinstance(value, str) and yaml.safe_load(value) == value:
            return value
        return json.dumps(value)
    return [f"{key}={text(value)}" for key, value in overrides.items()]


def read_preset(name: str) -> dict:
    path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        raise ParamsError(f"unknown preset {name!r}: choose one of {', '.join(preset_names())} ({PRESETS})")
    preset = yaml.safe_load(path.read_text()) or {}
    unknown = set(preset) - {"title", "base", "set", "needs", "runs"}
    if unknown:
        raise ParamsError(f"{path}: unknown keys {sorted(unknown)} (expected title, base, set, needs, runs)")
    return preset


def shared_overrides(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``set`` of ``name`` after its ``base`` chain's (the base first)."""
    if name in seen:
        raise ParamsError(f"preset {name!r}: its base chain loops ({' -> '.join(seen + (name,))})")
    preset = read_preset(name)
    out = shared_overrides(preset["base"], seen + (name,)) if preset.get("base") else {}
    out.update(preset.get("set") or {})
    return out


def preset_runs(name: str, user: dict[str, Any] | None = None) -> list[Run]:
    preset = read_preset(name)
    if not preset.get("runs"):
        raise ParamsError(f"preset {name!r} has no runs: it is a base of the table presets "
                          f"({', '.join(n for n in preset_names() if n != name)})")
    shared = shared_overrides(name)
    return [Run(run, {**shared, **(extra or {}), **(user or {})}) for run, extra in preset["runs"].items()]


def check_runs(name: str, runs: list[Run], params_path: str | Path = "params.yaml") -> None:
    """Each run's params.yaml after its overrides passes validation and has every ``needs``."""
    base = load_params(params_path)
    for run in runs:
        params = copy.deepcopy(base)
        for key, value in run.overrides.items():
            get(params, key, params_path)  # an override of a key params.yaml lacks is a typo
            set_dotted(params, key, value)
        for key in read_preset(name).get("needs") or []:
            if not get(params, key, params_path):
                raise ParamsError(f"preset {name}: {key} is empty; pass a local copy, e.g. -S {key}=/data/...")
        try:
            validate(params, params_path)
        except ParamsError as exc:
            raise ParamsError(f"preset {name}, run {run.name}: {exc}") from None


def hydra_value(value: Any) -> str:
    """``value`` in the override grammar ``dvc exp run -S`` reads (Hydra's): lists as [a,b];
    a string bare where Hydra reads it back as that string, else quoted ('true', '1e-3')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z0-9_/.][A-Za-z0-9_\-+./@:]*", value) and _hydra_reads(value) == value
        return value if plain else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def _hydra_reads(text: str) -> Any:
    """What ``-S key=<text>`` gives (DVC parses overrides with Hydra, a dependency of dvc)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(f"key={text}").value()


def shell_line(command: list[str]) -> str:
    """The command as a shell would take it, one ``-S`` override per line."""
    parts = [shlex.quote(part) for part in command]
    head = parts.index("-S") if "-S" in parts else len(parts)
    lines = [" ".join(parts[:head])] + [f"  -S {value}" for value in parts[head + 1::2]]
    return " \\\n".join(lines)


def run_preset(name: str, user: dict[str, Any], *, params_path="params.yaml", queue=False, dry_run=False,
               echo=print) -> int:
    """Check every run of ``name``, then print its commands (``dry_run``) or run them in turn."""
    runs = preset_runs(name, user)
    check_runs(name, runs, params_path)
    echo(f"# {read_preset(name)['title']}: {len(runs)} experiment(s)")
    for run in runs:
        echo(shell_line(run.command(queue)))
        if not dry_run:
            code = subprocess.call(run.command(queue))
            if code:
                return code
    return 0
