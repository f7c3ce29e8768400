"""Decode every module of a trained encoder back to audio (V-GIM thesis, sections 4.2-4.5).

For module ``m`` of a :class:`~vgim.model.Stack`, a :class:`Decoder` mirrors the encoder's conv/pool layers
of modules ``0..m`` in reverse with transposed convolutions (same kernel, stride and padding, so output
sample ``i`` of a layer is built from exactly the frames whose receptive field covers it; a max-pool layer
is mirrored by a transposed convolution with the pool's kernel and stride). The decoder reads the module's
deterministic representation ``c`` (``[batch, frames, channels]``; the GRU output when the module ends in a
GRU, the latent mean for a variational module) and writes a waveform ``[batch, 1, samples]``.

:func:`train_decoders` trains one decoder per module on a frozen encoder loaded with :func:`vgim.load`,
with the loss of :class:`ReconstructionLoss` (waveform MSE + multi-resolution log-magnitude STFT loss),
checkpointing atomically so that a killed run resumes where it stopped, then evaluates every decoder on
held-out audio (waveform MSE and log-spectral distance) and writes example WAVs and figures.

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
from vgim.interpret.spectra import (
    LSD_EPS,
    LSD_HOP,
    LSD_N_FFT,
    log_spectral_distance,
    log_spectrogram,
    plot_reconstruction,
)
from vgim.model.stack import Stack
from vgim.objective.reconstruction import Decoder, ReconstructionLoss, decoder_specs, module_channels

__all__ = [
    "DECODER_FILE",
    "DecodeResult",
    "Decoder",
    "ReconstructionLoss",
    "decoder_specs",
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

#: File (inside the decoder folder) holding the decoders, their optimisers, the step and the run config.
DECODER_FILE = "decoders.pt"


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
        Module -> the training loss at every step since step 0.
    seconds
        Wall time of this call (training + evaluation).
    figures, wavs
        Paths of the example figures and WAV files written.
    """

    out_dir: Path
    step: int
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    history: dict[int, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    figures: list[Path] = field(default_factory=list)
    wavs: list[Path] = field(default_factory=list)


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
    for key in ("step", "decoders", "config", "hidden"):
        if key not in state:
            raise ValueError(f"{path}: not a vgim decoder checkpoint (missing {key!r})")
    return state


def load_decoders(path: str | Path, device: torch.device | str = "cpu") -> dict[int, Decoder]:
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
        Module index (0-based) -> :class:`Decoder`.
    """
    state = _read_state(_decoder_file(path))
    cfg = config_from_dict(state["config"])
    out: dict[int, Decoder] = {}
    for m, weights in state["decoders"].items():
        dec = Decoder(cfg.model, int(m), int(state["hidden"]))
        dec.load_state_dict(weights, strict=True)
        out[int(m)] = dec.to(device).eval()
    return out


def as_batch(wave: np.ndarray | Tensor, device: torch.device) -> Tensor:
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32) if not isinstance(wave, Tensor) else wave)
    if x.dim() != 1:
        raise ValueError(f"expected a mono waveform of shape [samples], got {tuple(x.shape)}")
    return x.float().to(device).view(1, 1, -1)


@torch.no_grad()
def reconstruct(model: Stack, decoders: dict[int, Decoder], wave: np.ndarray | Tensor) -> dict[int, np.ndarray]:
    """Encode ``wave`` (``[samples]`` at 16 kHz) and decode it from every module that has a decoder.

    Returns module (0-based) -> reconstruction ``[samples]`` (``float32``, same length as ``wave``).
    Variational modules are decoded from their means (no sampling).
    """
    if not decoders:
        return {}
    device = next(model.parameters()).device
    x = as_batch(wave, device)
    was_training = model.training
    model.eval()
    try:
        outs = model(x, sample=False, upto=max(decoders), chunk_frames=2000)
    finally:
        model.train(was_training)
    result: dict[int, np.ndarray] = {}
    for m, dec in sorted(decoders.items()):
        y = dec(outs[m].c.to(next(dec.parameters()).device), x.shape[-1])
        result[m] = y[0, 0].float().cpu().numpy()
    return result


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


@torch.no_grad()
def evaluate_decoders(
    model: Stack, decoders: dict[int, Decoder], waves: Sequence[np.ndarray]
) -> dict[int, dict[str, float]]:
    """Per module: mean waveform MSE, LSD (dB) and SNR (dB) of the reconstructions of ``waves``.

    Every ``[samples]`` wave is encoded and decoded whole; the scores are averaged over files.
    ``mse_silence`` (the mean power of the audio, i.e. the MSE of an all-zero reconstruction) is the
    reference for the MSE.
    """
    sums: dict[int, dict[str, float]] = {m: {"mse": 0.0, "lsd_db": 0.0, "snr_db": 0.0} for m in decoders}
    power = 0.0
    for wave in waves:
        rec = reconstruct(model, decoders, wave)
        p = float(np.mean(wave.astype(np.float64) ** 2))
        power += p
        for m, y in rec.items():
            mse = float(np.mean((y.astype(np.float64) - wave) ** 2))
            sums[m]["mse"] += mse
            sums[m]["lsd_db"] += log_spectral_distance(wave, y)
            sums[m]["snr_db"] += float(10.0 * np.log10((p + 1e-12) / (mse + 1e-12)))
    n = max(1, len(waves))
    return {
        m: {k: v / n for k, v in s.items()} | {"mse_silence": power / n, "n_files": float(len(waves))}
        for m, s in sums.items()
    }


def decoder_config(
    cfg: Config,
    *,
    steps: int = 2000,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    hidden: int = 64,
    modules: list[int] | None = None,
    device: str = "auto",
) -> Config:
    """The training config of a run's decoders: the run's encoder, frozen (``train.mode = "frozen"``), under
    a reconstruction head per module (:mod:`vgim.objective.reconstruction`), logged every step."""
    objective = ObjectiveConfig(head="reconstruction", options={"hidden": hidden}, beta=0.0)
    train_cfg = TrainConfig(
        mode="frozen",
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        log_every=1,
        checkpoint_every=250,
        device=device,
        modules=list(modules or []),
    )
    return dataclasses.replace(
        cfg, name=f"{cfg.name}-decoders", objective=objective, train=train_cfg, data=dataclasses.replace(cfg.data)
    )


def _decoders_from_state(
    cfg: Config, objective_state: dict[str, Tensor], modules: list[int], device: torch.device | str
) -> dict[int, Decoder]:
    """The trained decoders in a decoder run's checkpoint (its heads' ``decoder`` weights), in eval mode."""
    hidden = int(cfg.objective.options.get("hidden", 64))
    out: dict[int, Decoder] = {}
    for m in modules:
        prefix = f"heads.{m}.decoder."
        dec = Decoder(cfg.model, m, hidden)
        dec.load_state_dict({k[len(prefix) :]: v for k, v in objective_state.items() if k.startswith(prefix)})
        out[m] = dec.to(device).eval()
    return out


def train_decoders(
    run_dir: str | Path,
    *,
    corpus: AudioCorpus | None = None,
    steps: int = 2000,
    batch_size: int = 8,
    lr: float = 1e-3,
    modules: list[int] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    hidden: int = 64,
    crop_samples: int | None = None,
    checkpoint_every: int = 250,
    n_examples: int = 3,
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
    steps
        Training steps (each trains every decoder on one batch).
    batch_size
        Random crops per batch.
    lr
        Adam learning rate (constant).
    modules
        0-based modules to decode; ``None`` = all.
    out_dir
        Output folder; default ``run_dir/decoders``.
    resume
        Continue from ``out_dir/decoders.pt`` when it exists (same modules and width); a finished training
        is only re-evaluated. ``False`` starts over.
    progress
        tqdm progress bar with every decoder's loss.
    seed
        Seeds the decoders' initialisation and the crops (batch ``s`` is a function of ``(seed, s)``, so a
        resumed training ends with the same weights as an uninterrupted one).
    hidden
        Channels of the decoders' hidden layers.
    crop_samples
        Crop length in samples; default the run's ``data.crop_samples``.
    checkpoint_every
        Save ``decoders.pt`` (atomically) every this many steps and at the end.
    n_examples
        Held-out files written as original / reconstructed WAVs plus a figure (``out_dir/examples``).
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
    from vgim.audio import write_audio
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
        cfg, steps=steps, batch_size=batch_size, lr=lr, seed=seed, hidden=hidden, modules=mods, device=device
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
    loss_fn = ReconstructionLoss()
    save_checkpoint(
        out / DECODER_FILE,
        {
            "step": done,
            "hidden": hidden,
            "decoders": {m: d.state_dict() for m, d in decoders.items()},
            "config": cfg.to_dict(),
            "train": {"lr": lr, "batch_size": batch_size, "seed": seed, "crop_samples": crop},
            "loss": loss_fn.describe(),
        },
    )
    logged = read_metrics(out) if run.metrics_path.exists() else {}
    history = {m: [float(v) for v in logged[m]["loss"]] if m in logged else [] for m in mods}
    result = DecodeResult(out_dir=out, step=done, history=history)
    if done < steps:
        result.seconds = time.perf_counter() - t0
        return result

    for d in decoders.values():
        d.eval()
    test_waves = list(test_corpus.waves)
    metrics = evaluate_decoders(model, decoders, test_waves)
    tail = max(1, min(50, done))
    summary = {
        "run": str(run_dir),
        "steps": done,
        "hidden": hidden,
        "train": {"lr": lr, "batch_size": batch_size, "seed": seed, "crop_samples": crop},
        "loss": loss_fn.describe(),
        "lsd": {"n_fft": LSD_N_FFT, "hop": LSD_HOP, "eps": LSD_EPS},
        "n_train_files": len(train_corpus.waves),
        "n_test_files": len(test_waves),
        "modules": [
            {"module": m, "name": f"m{m + 1}"}
            | metrics[m]
            | {"train_loss": float(np.mean(history[m][-tail:])) if history[m] else float("nan")}
            for m in mods
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "metrics.json", summary)
    result.metrics = metrics

    if n_examples > 0 and test_waves:
        picks = sorted(set(np.linspace(0, len(test_waves) - 1, min(n_examples, len(test_waves))).round().astype(int)))
        for k, i in enumerate(picks):
            wave = test_waves[i]
            stem = f"{k:02d}_{Path(test_corpus.utterances[i].path).stem}"
            rec = reconstruct(model, decoders, wave)
            write_audio(out / "examples" / f"{stem}_original.wav", wave, cfg.data.sample_rate)
            result.wavs.append(out / "examples" / f"{stem}_original.wav")
            scores: dict[int, dict[str, float]] = {}
            for m, y in rec.items():
                path = out / "examples" / f"{stem}_m{m + 1}.wav"
                write_audio(path, y, cfg.data.sample_rate)
                result.wavs.append(path)
                scores[m] = {"mse": float(np.mean((y - wave) ** 2)), "lsd_db": log_spectral_distance(wave, y)}
            result.figures.append(
                plot_reconstruction(
                    wave,
                    rec,
                    out / "examples" / f"{stem}.png",
                    sample_rate=cfg.data.sample_rate,
                    title=f"{cfg.name}: {Path(test_corpus.utterances[i].path).name} decoded from each module",
                    scores=scores,
                )
            )
    result.seconds = time.perf_counter() - t0
    log.info("decoders of %s: %s", run_dir, {f"m{m + 1}": metrics[m] for m in mods})
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
