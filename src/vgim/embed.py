"""Feature extraction to disk: every module's features of audio files of any length, in one ``.npz``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import vgim
from vgim.audio import AudioError, read_audio
from vgim.frames import SAMPLE_RATE

__all__ = ["EmbedResult", "embed_files"]

log = logging.getLogger("vgim")


@dataclass
class EmbedResult:
    path: Path
    n_files: int
    n_modules: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def embed_files(
    run: str | Path,
    files: Sequence[str | Path],
    out: str | Path,
    *,
    device: str = "cpu",
    chunk_frames: int = 2000,
) -> EmbedResult:
    """Write ``out`` (``.npz``) with, for file ``i`` and module ``m`` (1-based), the array
    ``f"{i}/m{m}"`` of shape ``[time_m, channels_m]``; ``files`` lists the paths in order, ``hop`` and
    ``offset`` give each module's frame geometry in samples at 16 kHz. Unreadable files are skipped and
    reported."""
    from tqdm.auto import tqdm

    model = vgim.load(run, device)
    arrays: dict[str, np.ndarray] = {}
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    for path in tqdm(list(files), desc="embed", unit="file", disable=len(files) < 2):
        try:
            wave = read_audio(path, SAMPLE_RATE)
            feats = model.extract_features(wave, SAMPLE_RATE, chunk_frames=chunk_frames)
        except (AudioError, ValueError) as err:
            reason = err.reason if isinstance(err, AudioError) else str(err)
            log.warning("skipping %s: %s", path, reason)
            skipped.append((str(path), reason))
            continue
        i = len(kept)
        kept.append(str(path))
        for m, f in enumerate(feats):
            arrays[f"{i}/m{m + 1}"] = f.float().cpu().numpy()
    arrays["files"] = np.array(kept)
    arrays["hop"] = np.array([fi.hop for fi in model.frames])
    arrays["offset"] = np.array([fi.offset for fi in model.frames])
    out_path = Path(out)
    if out_path.suffix != ".npz":
        out_path = out_path.with_suffix(".npz")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, out_path)
    return EmbedResult(path=out_path, n_files=len(kept), n_modules=model.n_modules, skipped=skipped)
