"""Pretrained encoders shipped as package data: finding them (``vgim.load("pretrained:NAME")``) and making one
from a finished run (``vgim package``).

::

    src/vgim/pretrained/NAME/model.safetensors   the run's export/ (the encoder's weights) ...
    src/vgim/pretrained/NAME/config.json         ... and its resolved config, which rebuilds the model
    src/vgim/pretrained/NAME/README.md           the model, its training data and licence, the command that
                                                 trained it, its probe table and the files' sizes
    src/vgim/pretrained/NAME/LICENSE             the licence text, where the data's licence asks for one

The folders of ``VGIM_PRETRAINED_DIR`` (``os.pathsep``-separated) are searched before the shipped one, so a
user's own packaged encoders load by name too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgim.config import Config, available_presets, load_config
from vgim.frames import SAMPLE_RATE

__all__ = [
    "ENV_DIR",
    "PREFIX",
    "PackagedEncoder",
    "package_run",
    "pretrained_names",
    "pretrained_path",
    "pretrained_roots",
    "probe_table",
    "train_command",
]

#: What ``vgim.load`` and the CLI's run arguments read as the name of a shipped encoder.
PREFIX = "pretrained:"
#: Folders searched for packaged encoders before the shipped one.
ENV_DIR = "VGIM_PRETRAINED_DIR"
#: The files of a packaged encoder that :func:`vgim.load` reads (a run's ``export/``).
EXPORT_FILES = ("model.safetensors", "config.json")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def shipped_root() -> Path:
    """The package's own folder of pretrained encoders (``src/vgim/pretrained`` in a checkout or an editable
    install, ``site-packages/vgim/pretrained`` in a wheel)."""
    return Path(__file__).resolve().parent / "pretrained"


def pretrained_roots() -> list[Path]:
    """The folders searched for ``pretrained:NAME``, in order: those of ``VGIM_PRETRAINED_DIR``, then the
    shipped one."""
    extra = [Path(p) for p in os.environ.get(ENV_DIR, "").split(os.pathsep) if p.strip()]
    return [*extra, shipped_root()]


def _is_encoder(folder: Path) -> bool:
    return all((folder / f).is_file() for f in EXPORT_FILES)


def pretrained_names() -> list[str]:
    """The names ``vgim.load("pretrained:NAME")`` accepts, sorted (a name in several folders counts once)."""
    names: set[str] = set()
    for root in pretrained_roots():
        if root.is_dir():
            names |= {p.name for p in root.iterdir() if _NAME.match(p.name) and _is_encoder(p)}
    return sorted(names)


def check_name(name: str) -> str:
    """``name`` if it can name a packaged encoder (lower-case letters, digits, ``.``, ``_``, ``-``), else a
    ValueError saying what is allowed."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r}: a pretrained encoder's name is lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def pretrained_path(name: str) -> Path:
    """The folder of the packaged encoder ``name`` (``NAME`` or ``pretrained:NAME``): the first of
    :func:`pretrained_roots` that holds it. ValueError listing the available names when none does."""
    name = name.removeprefix(PREFIX)
    if _NAME.match(name):
        for root in pretrained_roots():
            if _is_encoder(root / name):
                return root / name
    names = pretrained_names()
    available = ", ".join(names) if names else "none (the shipped encoder is added separately; see `vgim package`)"
    where = ", ".join(str(r) for r in pretrained_roots())
    raise ValueError(f"{PREFIX}{name}: no such pretrained encoder; available: {available} (searched {where})")


def probe_table(results: Sequence[dict[str, Any]]) -> str:
    """The markdown table (features x task, test accuracy in percent, with the chance row) of the rows of a
    ``vgim probe --out results.json`` file; ValueError naming the first row that is not a probe result."""
    from vgim.evaluate.probes import ProbeResult
    from vgim.evaluate.tables import results_table

    rows = []
    for i, row in enumerate(results):
        try:
            rows.append(ProbeResult(**row))
        except TypeError as err:
            raise ValueError(f"row {i}: not a vgim probe result ({err}); expected `vgim probe --out` rows") from err
    if not rows:
        raise ValueError("no probe results (an empty list)")
    return results_table(rows, "accuracy", chance=True)


def _toml_value(value: Any) -> str | None:
    """``value`` as a TOML literal for a ``section.key=value`` override, or None when it has none here."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        parts = [_toml_value(v) for v in value]
        return None if None in parts else "[" + ", ".join(p for p in parts if p is not None) + "]"
    return None


def train_command(cfg: Config, out: str = "RUN") -> str | None:
    """A ``vgim train`` command that trains ``cfg``: its preset plus one override per field that differs
    from the preset. None when ``cfg`` is not named after a preset or differs in a way no override says (a
    changed list of layers, a head's options)."""
    if cfg.name not in available_presets():
        return None
    base, mine = load_config(cfg.name).to_dict(), cfg.to_dict()
    overrides = []
    for section in mine:
        if section == "name":
            continue
        if not isinstance(mine[section], dict):
            return None
        for key, value in mine[section].items():
            if base.get(section, {}).get(key) == value:
                continue
            literal = _toml_value(value)
            if literal is None:
                return None
            overrides.append(shlex.quote(f"{section}.{key}={literal}"))
    return " ".join(["vgim train --preset", shlex.quote(cfg.name), "--out", shlex.quote(out), *overrides])


@dataclass
class PackagedEncoder:
    """What :func:`package_run` wrote: the folder, its files and their sizes in bytes."""

    name: str
    path: Path
    sizes: dict[str, int]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe_model(cfg: Config, n_parameters: int) -> list[str]:
    from vgim.model.geometry import module_geometry

    kind = "V-GIM" if cfg.model.variational else ("CPC" if len(cfg.model.modules) == 1 else "GIM")
    modules = ", ".join(
        f"m{g.index + 1}: {g.channels} channels every {1000 * g.frame.hop / SAMPLE_RATE:g} ms"
        for g in module_geometry(cfg.model)
    )
    t = cfg.train
    return [
        "| | |",
        "|---|---|",
        f"| config | `{cfg.name}` ({kind}; the full config is `config.json`) |",
        f"| modules | {modules} |",
        f"| bottleneck | {cfg.model.bottleneck} (beta {cfg.objective.beta:g}) |",
        f"| objective | {cfg.objective.head} |",
        f"| training | {t.steps} steps, batch {t.batch_size}, lr {t.lr:g}, mode {t.mode}, seed {t.seed} |",
        f"| parameters | {n_parameters:,} |",
    ]


def _readme(
    name: str,
    cfg: Config,
    *,
    n_parameters: int,
    data: str,
    data_licence: str,
    licence: str,
    has_licence_file: bool,
    command: str,
    probes: str | None,
    probe_data: str,
    files: dict[str, tuple[int, str]],
) -> str:
    licence_line = f"The weights: {licence}." + (" The full text is in `LICENSE`." if has_licence_file else "")
    lines = [
        f"# {name}: a pretrained vgim encoder",
        "",
        "```python",
        "import vgim",
        "",
        f'model = vgim.load("pretrained:{name}")',
        "features = model.extract_features(wave, sample_rate)  # one [time, channels] tensor per module",
        "```",
        "",
        f"or `vgim embed pretrained:{name} audio.wav --out features.npz`.",
        "",
        "## Model",
        "",
        *_describe_model(cfg, n_parameters),
        "",
        "## Training data",
        "",
        data,
        "",
        f"Licence of the data: {data_licence}.",
        "",
        "## Command",
        "",
        "The command that trained it:",
        "",
        "```",
        command,
        "```",
        "",
        "## Probes",
        "",
    ]
    if probes is None:
        lines += ["No probe results were given when it was packaged.", ""]
    else:
        intro = "Linear probes (`vgim probe`), test accuracy in percent"
        lines += [intro + (f", on {probe_data}:" if probe_data else ":"), "", probes.rstrip("\n"), ""]
    lines += ["## Files", "", "| file | bytes | SHA-256 |", "|---|---:|---|"]
    lines += [f"| `{f}` | {size:,} | `{digest}` |" for f, (size, digest) in files.items()]
    lines += ["", "## Licence", "", licence_line, ""]
    return "\n".join(lines)


def _check_run(run: Path) -> Config:
    """The config of finished run ``run``; an error saying why anything else cannot be packaged."""
    from vgim.train.rundir import RunDir

    rd = RunDir(run)
    if not rd.path.is_dir():
        raise FileNotFoundError(f"{run}: no such run directory")
    cfg = rd.saved_config()
    if cfg is not None and cfg.train.mode == "frozen":
        raise ValueError(f"{run}: a train.mode = 'frozen' run (decoders) exports no encoder; package the run it used")
    if not rd.is_finished():
        if rd.has_checkpoint():
            raise ValueError(
                f"{run}: the run has not finished (no {rd.export}); finish it with `vgim train --out {run} --resume`"
            )
        raise FileNotFoundError(f"{run}: no export ({rd.export}); package a finished vgim run directory")
    missing = [f for f in EXPORT_FILES if not (rd.export_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{rd.export_dir}: missing {', '.join(missing)}; the export is incomplete")
    import vgim

    saved = vgim.load(rd.export_dir).config  # reads the export and checks its weights against its config
    if saved is None:
        raise ValueError(f"{rd.export_dir}: the export holds no config")
    return saved


def package_run(
    run: str | Path,
    name: str,
    *,
    out: str | Path | None = None,
    data_licence: str,
    data: str = "",
    licence: str = "",
    licence_file: str | Path | None = None,
    command: str = "",
    probe_results: str | Path | None = None,
    probe_data: str = "",
    force: bool = False,
) -> PackagedEncoder:
    """Package the finished run ``run`` as the pretrained encoder ``name`` in ``out/name`` (``out``: the
    shipped folder by default): its ``export/`` files, a ``README.md`` (model, training data and its licence
    ``data_licence``, the training ``command``, the probe table of ``probe_results``, the files' sizes) and,
    with ``licence_file``, that file as ``LICENSE``.

    ``data``: what the training data is (default: the config's ``data.root`` and ``data.manifest``);
    ``licence``: the weights' licence (default: the data's terms); ``command``: the command that trained the
    run (default: :func:`train_command` of its config, an error when none says it).

    Raises ValueError for an unfinished run, a frozen (decoder) run, an unreadable probe file, and
    FileNotFoundError for a folder that is no run or has no export, FileExistsError when ``out/name``
    exists and ``force`` is False.
    """
    check_name(name)
    run = Path(run)
    cfg = _check_run(run)
    if not data_licence.strip():
        raise ValueError("the training data's licence is required (--data-licence)")
    command = command or train_command(cfg, str(run)) or ""
    if not command:
        raise ValueError(
            f"{run}: its config {cfg.name!r} is no preset plus overrides, so the command that trained it cannot be "
            "written from it; pass it with --command"
        )
    probes = None
    if probe_results is not None:
        try:
            rows = json.loads(Path(probe_results).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{probe_results}: not a readable probe results file ({err})") from err
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{probe_results}: expected a JSON list of probe results (`vgim probe --out`)")
        try:
            probes = probe_table(rows)
        except ValueError as err:
            raise ValueError(f"{probe_results}: {err}") from err
    if licence_file is not None and not Path(licence_file).is_file():
        raise FileNotFoundError(f"{licence_file}: no such licence file")
    if not data:
        data = f"`data.root = {cfg.data.root!r}`" + (
            f", `data.manifest = {cfg.data.manifest!r}`" * bool(cfg.data.manifest)
        )
    root = Path(out) if out is not None else shipped_root()
    dest = root / name
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} exists; pass --force to replace it")

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        for f in EXPORT_FILES:
            shutil.copyfile(run / "export" / f, tmp / f)
        if licence_file is not None:
            shutil.copyfile(licence_file, tmp / "LICENSE")
        files = {f: (p.stat().st_size, _sha256(p)) for f in sorted(os.listdir(tmp)) if (p := tmp / f).is_file()}
        from safetensors import safe_open

        with safe_open(str(tmp / "model.safetensors"), "pt") as weights:
            n_parameters = sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())
        text = _readme(
            name,
            cfg,
            n_parameters=n_parameters,
            data=data,
            data_licence=data_licence.strip().rstrip("."),
            licence=(licence or f"the terms of the training data ({data_licence.strip().rstrip('.')})").rstrip("."),
            has_licence_file=licence_file is not None,
            command=command,
            probes=probes,
            probe_data=probe_data,
            files=files,
        )
        (tmp / "README.md").write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sizes = {f: (dest / f).stat().st_size for f in sorted(os.listdir(dest))}
    return PackagedEncoder(name=name, path=dest, sizes=sizes)
