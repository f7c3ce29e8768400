"""Typed configuration: one dataclass per concern, named presets, and ``--section.key=value`` overrides.

A :class:`Config` is saved as ``config.json`` inside every run directory and inside every checkpoint, and the
model is always rebuilt from it. Presets are TOML files in ``vgim/presets/``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from vgim.frames import SAMPLE_RATE
from vgim.typed import ConfigError, from_dict

LayerKind = Literal["conv", "gabor", "maxpool", "gru"]
NegativeStrategy = Literal["batch", "same_sequence", "other_sequences", "same_speaker"]
TrainMode = Literal["together", "sequential", "end_to_end", "frozen"]
Precision = Literal["fp32", "bf16"]


@dataclass
class LayerSpec:
    """One layer of the encoder.

    ``conv``: Conv1d(kernel, stride, padding) to ``channels`` followed by ReLU; with ``norm = "layer"``
    each frame's channels are layer-normalised between the convolution and the ReLU (the channel-wise
    normalisation of Riviere et al. 2020, "Unsupervised pretraining transfers well across languages"),
    so quiet frames (a consonant's burst) reach the next layer at the scale of loud ones (a vowel).
    ``gabor``: a learnable filter bank on the waveform (LEAF, Zeghidour et al. 2021): ``channels`` complex
    Gabor filters of ``kernel`` samples, initialised on the mel scale, each parameterised by its centre
    frequency and bandwidth only; the output is the log of each filter's energy every ``stride`` samples
    (a learnable log-mel spectrogram). Only as the first layer, on one input channel; ``norm`` as for conv.
    ``maxpool``: MaxPool1d(kernel, stride); channels unchanged.
    ``gru``: a unidirectional GRU with ``channels`` hidden units (the autoregressive ``g_ar``).
    """

    kind: LayerKind = "conv"
    channels: int = 512
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    norm: Literal["none", "layer"] = "none"

    @property
    def strided(self) -> bool:
        """Whether the layer moves along time with ``kernel``, ``stride`` and ``padding`` (all but the GRU)."""
        return self.kind in ("conv", "gabor", "maxpool")

    @property
    def filters(self) -> bool:
        """Whether the layer filters its input into ``channels`` new channels (``conv`` and ``gabor``)."""
        return self.kind in ("conv", "gabor")


@dataclass
class ModelConfig:
    """The encoder: an ordered list of layers grouped into gradient-isolated modules.

    ``modules`` gives the number of layers in each module, in order; it must sum to ``len(layers)``.
    CPC is one module; GIM is several.

    ``bottleneck`` names what sits on each module's latent (:mod:`vgim.model.bottleneck`): ``identity``
    (CPC, GIM), ``gaussian`` (V-GIM: a mean and a log-variance, ``z = mu + sigma * eps`` while training,
    penalty ``KL(q(z|x) || N(0, I))``) or ``vq`` (a VQ-VAE codebook, :mod:`vgim.model.vq`). Its own
    settings go in ``bottleneck_options`` (checked against that bottleneck's options dataclass). Old
    configs' ``variational = true / false`` is read as ``bottleneck = "gaussian" / "identity"``.
    """

    layers: list[LayerSpec] = field(default_factory=list)
    modules: list[int] = field(default_factory=list)
    bottleneck: str = "identity"
    bottleneck_options: dict[str, bool | int | float | str] = field(default_factory=dict)
    in_channels: int = 1

    @property
    def variational(self) -> bool:
        """Whether the modules are Gaussian (V-GIM): their latents have a posterior ``mu``, ``logvar``."""
        return self.bottleneck == "gaussian"


@dataclass
class ObjectiveConfig:
    """Each module's loss: ``head loss + beta * bottleneck penalty`` (:mod:`vgim.objective`).

    ``head`` names the objective (``vgim.objective.HEADS.names()``): ``infonce`` (CPC's log-bilinear
    score ``z_{t+k}^T W_k c_t``, k = 1..K, configured by the fields below) or ``apc`` (:mod:`vgim.objective.apc`);
    a head's own settings go in ``options``. ``beta`` weighs the bottleneck's penalty (the KL of a Gaussian
    bottleneck, the commitment loss of a VQ one). The KL is summed over channels and averaged over frames
    and batch; code that sums it over frames too (the thesis author's) weighs the same beta T times more.
    """

    head: str = "infonce"
    options: dict[str, bool | int | float | str] = field(default_factory=dict)
    n_predictions: int = 12
    n_negatives: int = 10
    negatives: NegativeStrategy = "batch"
    beta: float = 0.0
    # Score at most this many context positions per sequence (a random subset each step); 0 = all.
    max_positions: int = 128
    # One set of negatives per scored position for all K steps (K times less gathering; see InfoNCE).
    share_negatives: bool = False
    # Score each step k at its own positions t < T - k (GIM's code) instead of one cut t < T - K for all k.
    positions_per_k: bool = False


@dataclass
class TrainConfig:
    """How to train. ``batch_size`` is per process: under ``torchrun`` with N processes each step sees
    ``N * batch_size`` crops. ``precision = "bf16"`` runs the encoder's forward pass under bfloat16 autocast
    (losses, gradients and Adam stay in float32)."""

    mode: TrainMode = "together"
    steps: int = 1000
    batch_size: int = 8  # crops per step and per process
    lr: float = 2e-4
    warmup_steps: int = 0
    # "exponential": lr * lr_gamma ** epoch (PyTorch's ExponentialLR stepped once per epoch; an epoch is
    # ceil(training files / batch_size) steps, see data.crops).
    lr_schedule: Literal["constant", "cosine", "exponential"] = "constant"
    lr_gamma: float = 0.995
    grad_clip: float = 0.0  # max global norm per module; 0 disables
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = torch default
    precision: Precision = "fp32"
    # Train only these modules (0-based; the others run frozen); empty = every module.
    modules: list[int] = field(default_factory=list)


@dataclass
class DataConfig:
    """Where training audio comes from.

    ``root`` is a folder of audio files, or ``"synthetic"`` for the embedded espeak-ng corpus.
    Labels come from ``manifest`` (a CSV with a ``path`` column) or from ``label_pattern``, a regular
    expression with named groups matched against each file's stem.

    ``stream`` reads each training crop from disk when a batch is made (only the file headers are read at
    the start) instead of decoding every file into memory first; both give the same batches. ``workers``
    makes the batches in that many ``DataLoader`` worker processes, ahead of the training loop, whichever
    the source; ``0`` makes them in the training process. Neither changes what is trained.
    """

    root: str = "synthetic"
    manifest: str = ""
    label_pattern: str = ""
    split: str = "train"
    sample_rate: int = SAMPLE_RATE  # the models' rate; any other value is refused (see validate)
    crop_samples: int = 20480
    pad_short: bool = False  # zero-pad files shorter than a crop instead of skipping them
    speaker_key: str = "speaker"
    min_rms: float = 1e-4  # quieter files count as silent and are skipped
    noise_snr_db: list[float] = field(default_factory=list)  # [low, high]: white noise; empty disables
    # root = "synthetic" only: [low, high] makes the embedded corpus with every word mixed with coloured
    # noise at a drawn SNR (written once, like the clean one; probes see it too). Empty: clean words.
    synthetic_noise_snr_db: list[float] = field(default_factory=list)
    background_dir: str = ""  # folder of noise files mixed in at a drawn SNR
    background_snr_db: list[float] = field(default_factory=lambda: [0.0, 15.0])
    stream: bool = False  # read crops from disk per batch instead of loading the corpus into memory
    workers: int = 0  # DataLoader worker processes making batches ahead of the loop; 0 = in the loop
    # "random": each step draws files and crop offsets anew. "fixed": every file is cropped once (its
    # offset drawn from train.seed) and each epoch visits every crop once in a new order (the thesis's way);
    # an epoch is ceil(files / batch_size) steps, its last batch the remainder.
    crops: Literal["random", "fixed"] = "random"


@dataclass
class Config:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")


#: The sample rates (Hz) vgim accepts in the header of an audio file and as a loader's target rate
#: (``data.sample_rate`` itself must be :data:`~vgim.frames.SAMPLE_RATE`, see :func:`validate`).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Read older configs: ``model.variational = true / false`` became ``model.bottleneck``."""
    model = data.get("model")
    if isinstance(model, dict) and "variational" in model:
        model = dict(model)
        variational = model.pop("variational")
        if not isinstance(variational, bool):
            raise ConfigError(f"model.variational: expected true or false, got {variational!r}")
        current = model.get("bottleneck", "identity")
        if current in ("identity", "gaussian"):
            model["bottleneck"] = "gaussian" if variational else "identity"
        elif variational:
            raise ConfigError(
                f"model.variational = true contradicts model.bottleneck = {current!r}; set model.bottleneck only"
            )
        data = data | {"model": model}
    return data


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg: Config = from_dict(Config, _migrate(data), "")
    validate(cfg)
    return cfg


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def available_presets() -> list[str]:
    """Names of the bundled presets (``vgim train --preset NAME``)."""
    folder = resources.files("vgim") / "presets"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_toml(path_or_name: str, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The table of a preset name or a ``.toml`` file, with its ``inherit`` chain merged in.

    Raises :class:`ConfigError` for a file that is missing, not ``.toml``, not UTF-8 or not valid TOML, an
    unknown preset, and an ``inherit`` chain that comes back to a file already in it.
    """
    path = Path(path_or_name)
    looks_like_file = path.suffix != "" or "/" in path_or_name or "\\" in path_or_name
    if path.suffix == ".toml" and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(f"config file {path}: not UTF-8 text ({err})") from err
        where = str(path)
        key = str(path.resolve())
    elif path.is_dir():
        raise ConfigError(f"config file {path} is a folder; expected a .toml file or a preset name")
    elif looks_like_file and path.exists():
        raise ConfigError(f"config file {path} does not end in .toml; vgim reads TOML config files named *.toml")
    elif looks_like_file:
        raise ConfigError(
            f"config file {path} not found (and no preset is named so; presets: {', '.join(available_presets())})"
        )
    else:
        res = resources.files("vgim") / "presets" / f"{path_or_name}.toml"
        if not res.is_file():
            raise ConfigError(
                f"no preset or config file named {path_or_name!r}; presets: {', '.join(available_presets())}"
            )
        text = res.read_text()
        where = f"preset {path_or_name}"
        key = f"preset:{path_or_name}"
    if key in _chain:
        names = [c.removeprefix("preset:") for c in (*_chain, key)]
        raise ConfigError(f"{where}: inherit chain loops back on itself ({' -> '.join(names)})")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: invalid TOML: {err}") from err
    base = data.pop("inherit", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{where}: inherit must be a preset name or a .toml path, got {base!r}")
        data = _merge(_read_toml(base, (*_chain, key)), data)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key=value``; the value is read as TOML (``3``, ``0.1``, ``true``, ``[1, 2]``,
    ``"text"``) and falls back to a bare string."""
    key, sep, raw = text.removeprefix("--").partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def load_config(preset_or_file: str, overrides: list[str] | None = None) -> Config:
    """Read a preset name or a TOML file, apply ``section.key=value`` overrides, type-check, validate."""
    data = _read_toml(preset_or_file)
    for text in overrides or []:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    return config_from_dict(data)


#: The keys ``vgim train --resume`` may change: they do not alter what the steps already trained meant.
RESUME_SAFE_KEYS = ("train.steps", "train.log_every", "train.checkpoint_every")


def resume_config(saved: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """The config of a run being resumed: its saved config with the overrides of :data:`RESUME_SAFE_KEYS`.

    Raises :class:`ConfigError` naming every other key (changing the model, the objective, the data or the
    optimiser halfway would silently train something else than the saved config says), and a
    ``train.steps`` change where the step count shapes the run (``train.mode = "sequential"`` splits the
    steps over the modules; ``train.lr_schedule = "cosine"`` decays over them).
    """
    base = config_from_dict(saved)
    refused = []
    for text in overrides or []:
        path, _ = parse_override(text)
        if ".".join(path) not in RESUME_SAFE_KEYS:
            refused.append(".".join(path))
    if refused:
        raise ConfigError(
            f"--resume continues the run with its saved config; {', '.join(refused)} cannot change on resume "
            f"(only {', '.join(RESUME_SAFE_KEYS)} can). Start a new run with --out to change them."
        )
    data = base.to_dict()
    for text in overrides or []:
        (section, key), value = parse_override(text)
        data[section][key] = value
    cfg = config_from_dict(data)
    if cfg.train.steps != base.train.steps and (base.train.mode == "sequential" or base.train.lr_schedule == "cosine"):
        why = (
            "train.mode='sequential' splits them over the modules"
            if base.train.mode == "sequential"
            else ("train.lr_schedule='cosine' decays the learning rate over them")
        )
        raise ConfigError(f"train.steps cannot change on resume for this run: {why}")
    return cfg


def validate(cfg: Config) -> None:
    """Raise :class:`ConfigError` when the config cannot describe a working model."""
    m = cfg.model
    if not m.layers:
        raise ConfigError("model.layers is empty")
    if not m.modules or any(n <= 0 for n in m.modules) or sum(m.modules) != len(m.layers):
        raise ConfigError(
            f"model.modules={m.modules} must be positive layer counts summing to len(model.layers)={len(m.layers)}"
        )
    ends = {sum(m.modules[: j + 1]) - 1 for j in range(len(m.modules))}
    for i, layer in enumerate(m.layers):
        if layer.kind == "gru" and i not in ends:
            raise ConfigError(f"model.layers[{i}]: a GRU must be the last layer of its module")
        if layer.kind == "gabor" and (i != 0 or m.in_channels != 1):
            raise ConfigError(f"model.layers[{i}]: a gabor filter bank must be the first layer, on mono audio")
        if layer.strided and (layer.kernel < 1 or layer.stride < 1 or layer.padding < 0):
            raise ConfigError(f"model.layers[{i}]: kernel and stride must be >= 1 and padding >= 0")
        if layer.norm != "none" and not layer.filters:
            raise ConfigError(f"model.layers[{i}]: norm={layer.norm!r} applies to conv and gabor layers only")
        if layer.channels < 1:
            raise ConfigError(f"model.layers[{i}]: channels must be >= 1")
    o = cfg.objective
    if o.n_predictions < 1 or o.n_negatives < 1:
        raise ConfigError("objective.n_predictions and objective.n_negatives must be >= 1")
    if o.beta < 0:
        raise ConfigError("objective.beta must be >= 0")
    from vgim.model.bottleneck import BOTTLENECKS
    from vgim.objective.base import HEADS

    BOTTLENECKS.options(m.bottleneck, m.bottleneck_options)
    HEADS.options(o.head, o.options)
    if o.beta > 0 and m.bottleneck == "identity":
        raise ConfigError(
            "objective.beta > 0 weighs a bottleneck's penalty: it needs model.bottleneck = 'gaussian' or 'vq' "
            "(model.variational = true is the old name of 'gaussian')"
        )
    t = cfg.train
    if t.steps < 0 or t.batch_size < 1 or t.lr <= 0:
        raise ConfigError("train.steps >= 0, train.batch_size >= 1 and train.lr > 0 are required")
    if len(set(t.modules)) != len(t.modules) or any(not 0 <= i < len(m.modules) for i in t.modules):
        raise ConfigError(
            f"train.modules={t.modules} must list distinct modules in 0..{len(m.modules) - 1} (empty: all)"
        )
    if not 0 < t.lr_gamma <= 1:
        raise ConfigError(f"train.lr_gamma must be in (0, 1], got {t.lr_gamma}")
    if o.positions_per_k and o.share_negatives:
        raise ConfigError("objective.positions_per_k and objective.share_negatives cannot be combined")
    if cfg.data.crops == "fixed" and cfg.data.stream:
        raise ConfigError("data.crops = 'fixed' keeps one crop per file in memory: set data.stream = false")
    if t.checkpoint_every < 1 or t.log_every < 1:
        raise ConfigError("train.checkpoint_every and train.log_every must be >= 1")
    if len(cfg.data.noise_snr_db) not in (0, 2) or len(cfg.data.background_snr_db) != 2:
        raise ConfigError("data.noise_snr_db must be [] or [low, high]; data.background_snr_db [low, high]")
    snr = cfg.data.synthetic_noise_snr_db
    if len(snr) not in (0, 2) or (len(snr) == 2 and snr[0] > snr[1]):
        raise ConfigError(f"data.synthetic_noise_snr_db must be [] or [low, high] with low <= high, got {snr}")
    if cfg.data.workers < 0:
        raise ConfigError(f"data.workers must be >= 0, got {cfg.data.workers}")
    d = cfg.data
    if d.sample_rate != SAMPLE_RATE:
        raise ConfigError(
            f"data.sample_rate = {d.sample_rate}: vgim models run at {SAMPLE_RATE} Hz and every loader resamples "
            f"audio to it; leave data.sample_rate at {SAMPLE_RATE}"
        )
    if d.crop_samples < 1:
        raise ConfigError(f"data.crop_samples must be >= 1 (samples per training crop), got {d.crop_samples}")
    if d.min_rms < 0:
        raise ConfigError(f"data.min_rms must be >= 0, got {d.min_rms}")
    _validate_negatives(cfg)


def _validate_negatives(cfg: Config) -> None:
    """Refuse crops too short for the predictions and ``objective.n_negatives`` above the largest pool.

    The pools are those of :func:`vgim.objective.infonce.sample_negatives`, for a crop of ``T`` frames and
    ``B = train.batch_size`` crops per process: ``batch`` ``B*T - 1``, ``same_sequence`` ``T - 1``,
    ``other_sequences`` ``(B-1)*T``, ``same_speaker`` at most ``B*T - 1`` (every crop of one speaker). The
    draws are with replacement, so a larger ``n_negatives`` only repeats frames: it is refused as a mistake.
    """
    from vgim.model.geometry import n_frames

    o, b = cfg.objective, cfg.train.batch_size
    if o.head != "infonce":  # the other heads draw no negatives and check their own settings
        return
    for m, frames in enumerate(n_frames(cfg.model, cfg.data.crop_samples)):
        if frames <= o.n_predictions:
            raise ConfigError(
                f"data.crop_samples={cfg.data.crop_samples} gives module {m + 1} {frames} frames, too few to "
                f"predict objective.n_predictions={o.n_predictions} steps ahead; use longer crops or fewer steps"
            )
        pool = {
            "batch": b * frames - 1,
            "same_sequence": frames - 1,
            "other_sequences": (b - 1) * frames,
            "same_speaker": b * frames - 1,
        }[o.negatives]
        if o.n_negatives > pool:
            raise ConfigError(
                f"objective.n_negatives={o.n_negatives} is more than the {pool} frames negatives={o.negatives!r} "
                f"can draw from in module {m + 1} ({frames} frames per crop of data.crop_samples="
                f"{cfg.data.crop_samples}, train.batch_size={b}); lower objective.n_negatives"
            )
