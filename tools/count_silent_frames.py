"""How many STFT frames of a folder of recordings the silence gate would count as digital silence: frames whose
loudest bin is below ``SILENT_DB`` (the spectrogram decoder's STFT, after resampling to 16 kHz).

    python tools/count_silent_frames.py ../shared/datasets/artificial-speech
"""

from __future__ import annotations

import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from vgim.audio import resample
from vgim.frames import SAMPLE_RATE
from vgim.objective.spectrogram import SILENT_DB, SpectrogramOptions


def main(folder: str) -> None:
    o = SpectrogramOptions()
    files = sorted(Path(folder).rglob("*.wav"))
    if not files:
        raise SystemExit(f"{folder}: no .wav files")
    silent = total = with_any = 0
    for f in files:
        wave, rate = sf.read(f, dtype="float32", always_2d=True)
        x = resample(wave.mean(axis=1), rate, SAMPLE_RATE)
        peak = np.abs(librosa.stft(x, n_fft=o.n_fft, hop_length=o.hop)).max(axis=0)
        n = int(np.sum(20 * np.log10(peak + 1e-12) < SILENT_DB))
        silent, total, with_any = silent + n, total + peak.size, with_any + (n > 0)
    print(f"{len(files)} files: {silent} of {total} frames below {SILENT_DB:g} dB; {with_any} files with any")


if __name__ == "__main__":
    main(sys.argv[1])
