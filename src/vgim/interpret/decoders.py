"""Decode every module of a trained encoder back to audio (V-GIM thesis, sections 4.2-4.5).

One decoder per module reads the module's deterministic representation ``c`` (``[batch, frames,
channels]``; the GRU output when the module ends in a GRU, the latent mean for a variational module) and
turns it into sound. Three kinds (``kind``; docs/decoders.md compares them):

- ``"spectrogram"`` (default, :mod:`vgim.objective.spectrogram`): predicts the log-magnitude STFT
  (L1 on log magnitudes and log-mel), inverted to a waveform by Griffin-Lim.
- ``"waveform"`` (:class:`Decoder`): transposed convolutions mirroring the encoder's conv/pool layers write
  the waveform, trained on waveform MSE plus a multi-resolution log-STFT loss.
- ``"thesis"``: the same mirrored decoder trained on the V-GIM thesis's log10-mel MSE.

:func:`train_decoders` trains them on a frozen encoder loaded with :func:`vgim.load` through the training
engine (``train.mode = "frozen"``: resume, NaN guard, atomic checkpoints), then scores every decoder on
held-out audio: waveform MSE, SNR, log-spectral and log-mel distances, and intelligibility
(:mod:`vgim.interpret.intelligibility`: an MFCC classifier of the original training audio scored on the
decoded test audio), and writes example WAVs and figures.

Module indices are 0-based in the API (as in ``Stack.block(m)``); files and labels say ``m1, m2, ...``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vgim.config import Config, ObjectiveConfig, TrainConfig, config_from_dict
from vgim.data.corpus import AudioCorpus
from vgim.interpret.decoding import (
    decode_waves,
    evaluate_decoders,
    evaluate_summary,
    reconstruct,
    write_examples,
)
from vgim.interpret.spectra import (
    LSD_EPS,
    LSD_HOP,
    LSD_N_FFT,
    log_spectral_distance,
    log_spectrogram,
    plot_reconstruction,
)
from vgim.model.stack import Stack
from vgim.objective.reconstruction import (
    AudioDecoder,
    Decoder,
    ReconstructionLoss,
    decoder_specs,
    module_channels,
)

__all__ = [
    "DECODER_FILE",
    "DECODER_KINDS",
    "AudioDecoder",
    "DecodeResult",
    "Decoder",
    "ReconstructionLoss",
    "decoder_specs",
    "decode_waves",
    "evaluate_decoders",
    "finished_decoders",
    "load_decoders",
    "log_spectral_distance",
    "log_spectrogram",
    "module_channels",
    "plot_reconstruction",
    "reconstruct",
    "train_decoders",
]

log = logging.getLogger("vgim")

#: File (inside the decoder folder) holding the decoders, their kind and options, the step and the run config.
DECODER_FILE = "decoders.pt"

#: Decoder kinds: the head that trains them and its fixed options (see the module docstring).
DECODER_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "spectrogram": ("spectrogram", {}),
    "waveform": ("reconstruction", {"loss": "stft"}),
    "thesis": ("reconstruction", {"loss": "thesis"}),
}


@dataclass
class DecodeResult:
    """What :func:`train_decoders` did.

    Attributes
    ----------
    out_dir
        The decoder folder (``decoders.pt``, ``metrics.json``, ``examples/``).
    step
        Training steps done (over all runs of a resumed training).
    metrics
        Module (0-based) -> ``{"mse", "lsd_db", "snr_db", ...}`` on held-out audio; empty when the
        training stopped early (``stop_after``).
    history
        Module -> the training loss at every logged step since step 0 (``train.log_every``).
    seconds
        Wall time of this call (training + evaluation).
    figures, wavs
        Paths of the example figures and WAV files written.
    intelligibility
        The intelligibility table (:meth:`~vgim.interpret.intelligibility.Intelligibility.to_dict`), or
        None without labels or with ``listen=False``.
    """

    out_dir: Path
    step: int
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    history: dict[int, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    figures: list[Path] = field(default_factory=list)
    wavs: list[Path] = field(default_factory=list)
    intelligibility: dict[str, Any] | None = None


def _decoder_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    for candidate in (p / DECODER_FILE, p / "decoders" / DECODER_FILE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no {DECODER_FILE} (give a run directory, its decoders/ folder or the file)")


def _read_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling error means the file is not ours
        raise ValueError(f"{path}: not a readable decoder checkpoint ({err})") from err
    for key in ("step", "decoders", "config"):
        if key not in state:
            raise ValueError(f"{path}: not a vgim decoder checkpoint (missing {key!r})")
    return state


def _build_decoders(
    cfg: Config, head: str, options: dict[str, Any], modules: Sequence[int], device: torch.device | str
) -> dict[int, AudioDecoder]:
    """Fresh decoders of ``modules`` as the heads ``head`` with ``options`` build them for ``cfg``'s encoder."""
    from vgim.objective.losses import Objective

    objective = Objective(Stack(cfg.model), ObjectiveConfig(head=head, options=dict(options), beta=0.0))
    out: dict[int, AudioDecoder] = {}
    for m in modules:
        dec = objective.heads[m].decoder
        if not isinstance(dec, AudioDecoder):
            raise TypeError(f"head {head!r} has no AudioDecoder")
        out[m] = dec.to(device).eval()
    return out


def _stored_head(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The head and options of a ``decoders.pt`` (files written before decoder kinds: waveform decoders)."""
    if "head" in state:
        return str(state["head"]), dict(state["options"])
    return "reconstruction", {"hidden": int(state["hidden"])}


def load_decoders(path: str | Path, device: torch.device | str = "cpu") -> dict[int, AudioDecoder]:
    """Load trained decoders, in eval mode, on ``device``.

    Parameters
    ----------
    path
        A run directory (reads ``RUN/decoders/decoders.pt``), a decoder folder, or the ``decoders.pt`` file.
    device
        Torch device.

    Returns
    -------
    dict
        Module index (0-based) -> :class:`~vgim.objective.reconstruction.AudioDecoder` (a
        :class:`~vgim.objective.spectrogram.SpectrogramDecoder` or a waveform :class:`Decoder`).
    """
    file = _decoder_file(path)
    state = _read_state(file)
    cfg = config_from_dict(state["config"])
    head, options = _stored_head(state)
    out = _build_decoders(cfg, head, options, sorted(int(m) for m in state["decoders"]), device)
    for m, weights in state["decoders"].items():
        try:
            out[int(m)].load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{file}: decoder m{int(m) + 1} does not match its stored options ({err})") from err
    return out


# ---------------------------------------------------------------------------------------------------------
# Figures


def _split_corpus(
    cfg: Config, corpus: AudioCorpus | None, progress: bool, seed: int = 0
) -> tuple[AudioCorpus, AudioCorpus]:
    """(training, held-out) utterances by the project's one hold-out rule
    (:func:`vgim.evaluate.evaluation.train_test_split`: the corpus's train/test splits, or a seeded 80/20
    split), so the report's held-out examples are never audio its decoders trained on."""
    from vgim.evaluate.evaluation import train_test_split

    if corpus is None:
        from vgim.data.source import open_corpus

        corpus = open_corpus(cfg.data, progress=progress)
    train, test, how = train_test_split(corpus, seed)
    log.info("decoders: %s", how)
    return train, test


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def decoder_config(
    cfg: Config,
    *,
    kind: str = "spectrogram",
    steps: int = 2000,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    hidden: int | None = None,
    modules: list[int] | None = None,
    device: str = "auto",
) -> Config:
    """The training config of a run's decoders: the run's encoder, frozen (``train.mode = "frozen"``), under
    the head of ``kind`` (:data:`DECODER_KINDS`) on every module; ``hidden`` overrides the head's width.
    Adam at ``lr`` after a short warm-up, cosine-decayed to a tenth by the last step."""
    if kind not in DECODER_KINDS:
        raise ValueError(f"decoder kind must be one of {sorted(DECODER_KINDS)}, got {kind!r}")
    head, fixed = DECODER_KINDS[kind]
    options = dict(fixed) | ({"hidden": hidden} if hidden is not None else {})
    objective = ObjectiveConfig(head=head, options=options, beta=0.0)
    train_cfg = TrainConfig(
        mode="frozen",
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=min(50, steps // 10),
        lr_schedule="cosine",
        seed=seed,
        log_every=max(1, min(25, steps // 20)),
        checkpoint_every=250,
        device=device,
        modules=list(modules or []),
    )
    return dataclasses.replace(
        cfg, name=f"{cfg.name}-decoders", objective=objective, train=train_cfg, data=dataclasses.replace(cfg.data)
    )


def _decoders_from_state(
    cfg: Config, objective_state: dict[str, Tensor], modules: list[int], device: torch.device | str
) -> dict[int, AudioDecoder]:
    """The trained decoders in a decoder run's checkpoint (its heads' ``decoder`` weights), in eval mode."""
    out = _build_decoders(cfg, cfg.objective.head, cfg.objective.options, modules, device)
    for m, dec in out.items():
        prefix = f"heads.{m}.decoder."
        dec.load_state_dict({k[len(prefix) :]: v for k, v in objective_state.items() if k.startswith(prefix)})
    return out


def train_decoders(
    run_dir: str | Path,
    *,
    corpus: AudioCorpus | None = None,
    kind: str = "spectrogram",
    steps: int = 2000,
    batch_size: int = 8,
    lr: float = 1e-3,
    modules: list[int] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    hidden: int | None = None,
    crop_samples: int | None = None,
    checkpoint_every: int = 250,
    n_examples: int = 3,
    listen: bool = True,
    device: str = "auto",
    stop_after: int | None = None,
) -> DecodeResult:
    """Train a decoder for each module of a trained run, evaluate them and write examples.

    Parameters
    ----------
    run_dir
        A trained run (anything :func:`vgim.load` accepts). The encoder is frozen (eval mode, no gradient).
    corpus
        Audio to train and evaluate on; its ``train`` split trains and its ``test`` split evaluates. Without
        both, a seeded 80/20 split by utterance (the same one the report uses for the same ``seed``).
        ``None``: the run's data (``config.data``; the embedded synthetic corpus for ``root = "synthetic"``).
    kind
        ``"spectrogram"`` (default), ``"waveform"`` or ``"thesis"`` (see the module docstring).
    steps
        Training steps (each trains every decoder on one batch).
    batch_size
        Random crops per batch.
    lr
        Adam's peak learning rate (warm-up over the first 50 steps, then cosine decay to ``lr / 10``).
    modules
        0-based modules to decode; ``None`` = all.
    out_dir
        Output folder; default ``run_dir/decoders``.
    resume
        Continue from ``out_dir``'s checkpoint when it exists (same kind, modules and width); a finished
        training is only re-evaluated. ``False`` starts over.
    progress
        tqdm progress bar with every decoder's loss.
    seed
        Seeds the decoders' initialisation and the crops (batch ``s`` is a function of ``(seed, s)``, so a
        resumed training ends with the same weights as an uninterrupted one).
    hidden
        Channels of the decoders' hidden layers; default the kind's (256 spectrogram, 64 waveform).
    crop_samples
        Crop length in samples; default the run's ``data.crop_samples``.
    checkpoint_every
        Save the checkpoint (atomically) every this many steps and at the end.
    n_examples
        Held-out files written as original / reconstructed WAVs plus a figure (``out_dir/examples``).
    listen
        Also score intelligibility (:func:`~vgim.interpret.intelligibility.intelligibility`: an MFCC
        classifier of the training audio's labels, scored on the decoded test audio) when the corpus has
        labels; in ``metrics.json`` under ``intelligibility``.
    device
        ``auto``, ``cpu``, ``cuda``, ...
    stop_after
        Stop after this many steps of this call without finishing (simulates a killed run; tests).

    Returns
    -------
    DecodeResult
        Metrics per module (also in ``out_dir/metrics.json``), loss history and written files.
    """
    import vgim
    from vgim.data.batches import CropBatches
    from vgim.train.loop import load_checkpoint, resolve_device, save_checkpoint, train
    from vgim.train.metrics import read_metrics
    from vgim.train.rundir import RunDir

    for name, count in (("steps", steps), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"decoder {name} must be an integer >= 1, got {count!r}")
    if not lr > 0:
        raise ValueError(f"decoder lr must be > 0, got {lr!r}")
    t0 = time.perf_counter()
    dev = resolve_device(device)
    model = vgim.load(run_dir, device=dev)
    cfg = model.config
    if cfg is None:
        raise ValueError(f"{run_dir}: the loaded model has no config")
    mods = sorted(set(range(model.n_modules) if modules is None else modules))
    if not mods or any(not 0 <= m < model.n_modules for m in mods):
        raise ValueError(f"modules must be a non-empty subset of 0..{model.n_modules - 1}, got {modules}")
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "decoders"
    crop = int(crop_samples or cfg.data.crop_samples)
    dec_cfg = decoder_config(
        cfg,
        kind=kind,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        hidden=hidden,
        modules=mods,
        device=device,
    )
    dec_cfg.train.checkpoint_every = checkpoint_every
    dec_cfg.data.crop_samples = crop
    run = RunDir(out)
    if not resume and run.has_checkpoint():
        run.checkpoint.unlink()  # resume=False: start over (the decoders are derived from the run, not data)
        run.config_path.unlink(missing_ok=True)
    run.check_config(dec_cfg)
    train_corpus, test_corpus = _split_corpus(cfg, corpus, progress, seed)
    resumed = run.has_checkpoint()
    if not resumed or int(load_checkpoint(run.checkpoint)["step"]) < steps:
        if resumed:
            log.info("resuming decoder training in %s", out)
        train(
            dec_cfg,
            out,
            batches=CropBatches(train_corpus.waves, crop, batch_size, seed=seed),
            resume=resumed,
            progress=progress,
            stop_after=stop_after,
            init_model=model.state_dict(),
        )
    state = load_checkpoint(run.checkpoint, dev)
    done = int(state["step"])
    decoders = _decoders_from_state(dec_cfg, state["objective"], mods, dev)
    head, options = dec_cfg.objective.head, dict(dec_cfg.objective.options)
    save_checkpoint(
        out / DECODER_FILE,
        {
            "step": done,
            "kind": kind,
            "head": head,
            "options": options,
            "decoders": {m: d.state_dict() for m, d in decoders.items()},
            "config": cfg.to_dict(),
            "train": {"lr": lr, "batch_size": batch_size, "seed": seed, "crop_samples": crop},
        },
    )
    logged = read_metrics(out) if run.metrics_path.exists() else {}
    history = {m: [float(v) for v in logged[m]["loss"]] if m in logged else [] for m in mods}
    result = DecodeResult(out_dir=out, step=done, history=history)
    if done < steps:
        result.seconds = time.perf_counter() - t0
        return result
    scores = evaluate_summary(model, decoders, train_corpus, test_corpus, listen=listen, seed=seed)
    modules_scores: list[dict[str, Any]] = scores["modules"]
    tail = max(1, min(10, len(history[mods[0]])))
    summary: dict[str, Any] = {
        "run": str(run_dir),
        "kind": kind,
        "head": head,
        "options": options,
        "steps": done,
        "train": {"lr": lr, "batch_size": batch_size, "seed": seed, "crop_samples": crop},
        "lsd": {"n_fft": LSD_N_FFT, "hop": LSD_HOP, "eps": LSD_EPS},
        "n_train_files": len(train_corpus.waves),
        "n_test_files": len(test_corpus.waves),
    } | scores
    for entry in modules_scores:
        h = history[entry["module"]]
        entry["train_loss"] = float(np.mean(h[-tail:])) if h else float("nan")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "metrics.json", summary)
    result.metrics = {
        int(e["module"]): {k: v for k, v in e.items() if k not in ("module", "name")} for e in modules_scores
    }
    result.intelligibility = scores.get("intelligibility")
    if n_examples > 0 and test_corpus.waves:
        write_examples(model, decoders, test_corpus, out / "examples", n_examples, result)
    result.seconds = time.perf_counter() - t0
    log.info("decoders of %s: %s", run_dir, {f"m{m + 1}": result.metrics[m] for m in mods})
    return result


def finished_decoders(run_dir: Path, n_modules: int) -> Path | None:
    """``run_dir/decoders`` when it holds a finished training of a decoder for every module, else None."""
    folder = run_dir / "decoders"
    ckpt, meta_path = folder / DECODER_FILE, folder / "metrics.json"
    if not (ckpt.is_file() and meta_path.is_file()):
        return None
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        meta = json.loads(meta_path.read_text())
        step, steps = int(state["step"]), int(meta["steps"])
        modules = sorted(int(m) for m in state["decoders"])
    except Exception as err:  # noqa: BLE001 - an unreadable folder is simply not reused
        log.warning("not reusing %s: %s", folder, err)
        return None
    if step != steps or modules != list(range(n_modules)):
        return None
    return folder
