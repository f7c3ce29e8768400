"""Using trained per-module decoders: reconstruct a wave from every module, decode a corpus, score the
reconstructions (:mod:`vgim.interpret.intelligibility`) and write example WAVs and figures.

Decoders are trained and loaded by :mod:`vgim.interpret.decoders`. Module indices are 0-based.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vgim.data.corpus import AudioCorpus
from vgim.interpret.intelligibility import reconstruction_scores
from vgim.interpret.spectra import log_spectral_distance, plot_reconstruction
from vgim.model.stack import Stack
from vgim.objective.reconstruction import AudioDecoder

if TYPE_CHECKING:
    from vgim.interpret.decoders import DecodeResult

__all__ = ["decode_waves", "evaluate_decoders", "evaluate_summary", "reconstruct", "write_examples"]


@torch.no_grad()
def reconstruct(model: Stack, decoders: dict[int, AudioDecoder], wave: np.ndarray | Tensor) -> dict[int, np.ndarray]:
    """Encode ``wave`` (``[samples]`` at 16 kHz) and decode it from every module that has a decoder.

    Returns module (0-based) -> reconstruction ``[samples]`` (``float32``, same length as ``wave``).
    Variational modules are decoded from their means (no sampling).
    """
    if not decoders:
        return {}
    length = int(np.shape(wave)[-1])
    outs = model.encode_wave(wave, upto=max(decoders))
    result: dict[int, np.ndarray] = {}
    for m, dec in sorted(decoders.items()):
        y = dec.synthesize(outs[m].c.to(next(dec.parameters()).device), length)
        result[m] = y[0, 0].float().cpu().numpy()
    return result


@torch.no_grad()
def evaluate_decoders(
    model: Stack, decoders: dict[int, AudioDecoder], waves: Sequence[np.ndarray]
) -> dict[int, dict[str, float]]:
    """Per module: the mean :func:`~vgim.interpret.intelligibility.reconstruction_scores` (waveform MSE,
    SNR, log-spectral and log-mel distances, ``mse_silence``) of the reconstructions of ``waves``.

    Every ``[samples]`` wave is encoded and decoded whole; the scores are averaged over files.
    """
    recs = decode_waves(model, decoders, waves)
    return {m: reconstruction_scores(waves, recs[m]) for m in decoders}


def decode_waves(
    model: Stack, decoders: dict[int, AudioDecoder], waves: Sequence[np.ndarray]
) -> dict[int, list[np.ndarray]]:
    """Module -> the reconstruction of every wave of ``waves`` (each encoded and decoded whole)."""
    out: dict[int, list[np.ndarray]] = {m: [] for m in decoders}
    for wave in waves:
        for m, y in reconstruct(model, decoders, wave).items():
            out[m].append(y)
    return out


def evaluate_summary(
    model: Stack,
    decoders: dict[int, AudioDecoder],
    train_corpus: AudioCorpus,
    test_corpus: AudioCorpus,
    *,
    listen: bool,
    seed: int,
) -> dict[str, Any]:
    """``metrics.json``'s scores: per module the reconstruction scores of the test audio and, with
    ``listen`` and labels, the intelligibility table (decoded rows beside their references)."""
    from vgim.interpret.intelligibility import griffin_lim_reference, intelligibility
    from vgim.objective.spectrogram import SpectrogramDecoder

    test_waves = list(test_corpus.waves)
    recs = decode_waves(model, decoders, test_waves)
    modules = [{"module": m, "name": f"m{m + 1}"} | reconstruction_scores(test_waves, recs[m]) for m in sorted(recs)]
    summary: dict[str, Any] = {"modules": modules}
    if listen:
        references: dict[str, list[np.ndarray]] = {}
        spectral = [d for d in decoders.values() if isinstance(d, SpectrogramDecoder)]
        if spectral:
            references["Griffin-Lim of the original"] = griffin_lim_reference(test_waves, spectral[0])
        decoded = {f"decoded m{m + 1}": recs[m] for m in sorted(recs)}
        table = intelligibility(train_corpus, test_corpus, decoded, references=references, seed=seed)
        if table is not None:
            summary["intelligibility"] = table.to_dict()
    return summary


def write_examples(
    model: Stack,
    decoders: dict[int, AudioDecoder],
    test_corpus: AudioCorpus,
    folder: Path,
    n_examples: int,
    result: DecodeResult,
) -> None:
    """Original and reconstructed WAVs and a figure for ``n_examples`` held-out files, into ``folder``."""
    from vgim.audio import write_audio

    waves, sr = test_corpus.waves, test_corpus.sample_rate
    picks = sorted(set(np.linspace(0, len(waves) - 1, min(n_examples, len(waves))).round().astype(int)))
    for k, i in enumerate(picks):
        wave, name = waves[i], Path(test_corpus.utterances[i].path)
        stem = f"{k:02d}_{name.stem}"
        rec = reconstruct(model, decoders, wave)
        write_audio(folder / f"{stem}_original.wav", wave, sr)
        result.wavs.append(folder / f"{stem}_original.wav")
        scores: dict[int, dict[str, float]] = {}
        for m, y in rec.items():
            path = folder / f"{stem}_m{m + 1}.wav"
            write_audio(path, y, sr)
            result.wavs.append(path)
            scores[m] = {"mse": float(np.mean((y - wave) ** 2)), "lsd_db": log_spectral_distance(wave, y)}
        title = f"{model.config.name if model.config else 'model'}: {name.name} decoded from each module"
        result.figures.append(
            plot_reconstruction(wave, rec, folder / f"{stem}.png", sample_rate=sr, title=title, scores=scores)
        )
