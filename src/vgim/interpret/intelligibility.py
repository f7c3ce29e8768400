"""How much of a word a reconstruction keeps, as numbers: distances to the original and intelligibility.

:func:`reconstruction_scores` compares reconstructions with the original audio (waveform MSE, SNR,
log-spectral distance, log-mel distance). :func:`intelligibility` asks a listener that cannot be fooled by
noise with the word's envelope: a linear classifier (the project's MFCC probe, :mod:`vgim.evaluate`)
trained on MFCCs of the *original* training audio, scored on the *decoded* test audio, beside its score
on the original test audio (the identity path, the best a decoder can do), on silence (chance) and, for
spectrogram decoders, on the original's own magnitudes inverted by Griffin-Lim (what the phase estimate
alone costs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vgim.data.corpus import AudioCorpus
from vgim.interpret.spectra import LSD_EPS, mel_db, power_spectrogram, spectral_distance

if TYPE_CHECKING:
    from vgim.objective.spectrogram import SpectrogramDecoder

#: Frames within this many dB of a file's loudest count as active (``lsd_active_db``).
ACTIVE_DB = 60.0

__all__ = [
    "ACTIVE_DB",
    "Intelligibility",
    "griffin_lim_reference",
    "intelligibility",
    "reconstruction_scores",
]


def reconstruction_scores(waves: Sequence[np.ndarray], recs: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean over files of the waveform MSE, SNR (dB), log-spectral distance (dB) and log-mel distance (dB)
    of ``recs`` against ``waves``; ``lsd_active_db`` is the log-spectral distance over the frames within
    60 dB of each file's loudest (no digital silence); ``mse_silence`` (the mean power: the MSE of an
    all-zero output) and ``lsd_silence_db`` are the references, ``n_files`` the count."""
    if len(waves) != len(recs):
        raise ValueError(f"{len(waves)} waves but {len(recs)} reconstructions")
    keys = ("mse", "snr_db", "lsd_db", "lsd_active_db", "log_mel_db", "mse_silence", "lsd_silence_db")
    sums = dict.fromkeys(keys, 0.0)
    for wave, y in zip(waves, recs, strict=True):
        w = np.asarray(wave, dtype=np.float64)
        p = float(np.mean(w**2))
        mse = float(np.mean((np.asarray(y, dtype=np.float64) - w) ** 2))
        # each file's spectrograms once: the distances below all compare the same two
        pa, pb = power_spectrogram(wave), power_spectrogram(y)
        a, b = 10.0 * np.log10(pa + LSD_EPS), 10.0 * np.log10(pb + LSD_EPS)
        sums["mse"] += mse
        sums["snr_db"] += float(10.0 * np.log10((p + 1e-12) / (mse + 1e-12)))
        sums["lsd_db"] += spectral_distance(a, b)
        sums["lsd_active_db"] += spectral_distance(a, b, ACTIVE_DB)
        sums["log_mel_db"] += spectral_distance(mel_db(pa), mel_db(pb))
        sums["mse_silence"] += p
        sums["lsd_silence_db"] += spectral_distance(a, np.full_like(a, 10.0 * np.log10(LSD_EPS)))
    n = max(1, len(waves))
    return {k: v / n for k, v in sums.items()} | {"n_files": float(len(waves))}


def griffin_lim_reference(waves: Sequence[np.ndarray], decoder: SpectrogramDecoder) -> list[np.ndarray]:
    """The originals' own STFT magnitudes (the ``decoder``'s ``n_fft`` and ``hop``) inverted by the same
    Griffin-Lim it uses: a perfect spectrogram decoder's output."""
    import librosa

    from vgim.objective.spectrogram import griffin_lim

    o = decoder.options
    mags = [np.abs(librosa.stft(np.asarray(w, dtype=np.float32), n_fft=o.n_fft, hop_length=o.hop)) for w in waves]
    return [griffin_lim(m, o, len(w)).astype(np.float32) for m, w in zip(mags, waves, strict=True)]


@dataclass
class Intelligibility:
    """Rows of audio (``original``, ``silence``, references, ``decoded m1`` ...) against the probe tasks.

    ``accuracy[row][task]`` in [0, 1]; ``distance[row]`` the row's :func:`reconstruction_scores` subset
    (``lsd_db``, ``log_mel_db``) against the original test audio.
    """

    tasks: list[str]
    accuracy: dict[str, dict[str, float]]
    distance: dict[str, dict[str, float]]
    n_train: int
    n_test: int

    def relative(self, row: str, task: str) -> float:
        """``row``'s accuracy on ``task`` as a fraction of the original audio's."""
        base = self.accuracy["original"][task]
        return self.accuracy[row][task] / base if base > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks),
            "accuracy": self.accuracy,
            "distance": self.distance,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Intelligibility:
        return cls(list(d["tasks"]), dict(d["accuracy"]), dict(d["distance"]), int(d["n_train"]), int(d["n_test"]))

    def rows(self) -> list[tuple[str, ...]]:
        """Table rows: audio, then per task accuracy (% and % of the original's), LSD, log-mel distance."""
        out = []
        for row, acc in self.accuracy.items():
            cells = [row]
            for t in self.tasks:
                rel = self.relative(row, t)
                cells.append(f"{100 * acc[t]:.1f} ({100 * rel:.0f} %)")
            d = self.distance[row]
            cells += [f"{d['lsd_db']:.1f}", f"{d['log_mel_db']:.1f}"]
            out.append(tuple(cells))
        return out

    def header(self) -> list[str]:
        return ["audio", *[f"{t} (% of original)" for t in self.tasks], "LSD (dB)", "log-mel dist. (dB)"]

    def markdown(self) -> str:
        head = self.header()
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows()]
        return "\n".join(lines)


def intelligibility(
    train: AudioCorpus,
    test: AudioCorpus,
    decoded: Mapping[str, Sequence[np.ndarray]],
    *,
    references: Mapping[str, Sequence[np.ndarray]] | None = None,
    seed: int = 0,
) -> Intelligibility | None:
    """Score decoded test audio with an MFCC classifier of the original training audio.

    Parameters
    ----------
    train, test
        The corpus's training and test utterances (labels and syllable segments as the probes read them);
        the classifier is fitted on MFCCs of ``train``'s audio.
    decoded
        Row name -> one reconstruction per test utterance (same lengths, so the segments still apply).
    references
        More rows scored the same way (e.g. :func:`griffin_lim_reference`); ``original`` (the test audio
        itself) and ``silence`` (zeros) always come first.
    seed
        The probes' seed.

    Returns
    -------
    Intelligibility or None
        None when the corpus has none of the probe tasks' labels (nothing to recognise).
    """
    from vgim.evaluate.baselines import mfcc_features, mfcc_frames
    from vgim.evaluate.evaluation import EvaluationSplit, label_tasks, one_thread
    from vgim.evaluate.probes import DEFAULT_TASKS, run_probes

    train_labels = [u.labels for u in train.utterances]
    test_labels = [u.labels for u in test.utterances]
    train_segments = [u.segments for u in train.utterances]
    test_segments = [u.segments for u in test.utterances]
    # the standard tasks this corpus can be probed on (labels everywhere, two classes in training: the
    # thesis corpus's single speaker is no task)
    standard = {t.name for t in DEFAULT_TASKS}
    tasks = [t for t in label_tasks(EvaluationSplit(train, test))[0] if t.name in standard]
    if not tasks or not test.waves:
        return None
    sr = train.sample_rate
    rows: dict[str, Sequence[np.ndarray]] = {
        "original": test.waves,
        "silence": [np.zeros_like(w) for w in test.waves],
    }
    rows |= dict(references or {})
    rows |= dict(decoded)
    for name, waves in rows.items():
        if len(waves) != len(test.waves) or any(len(a) != len(b) for a, b in zip(waves, test.waves, strict=True)):
            raise ValueError(f"intelligibility row {name!r}: expected one wave per test utterance, of its length")
    with one_thread():
        train_mfcc = [mfcc_features(w, sr) for w in train.waves]
        sets = {
            name: (train_mfcc, [mfcc_features(w, sr) for w in waves], mfcc_frames(sr)) for name, waves in rows.items()
        }
        results = run_probes(sets, train_labels, train_segments, test_labels, test_segments, tasks, seed=seed)
    accuracy: dict[str, dict[str, float]] = {name: {} for name in rows}
    for r in results:
        accuracy[r.features][r.task] = float(r.accuracy)
    distance = {}
    for name, waves in rows.items():
        s = reconstruction_scores(test.waves, waves)
        distance[name] = {"lsd_db": s["lsd_db"], "log_mel_db": s["log_mel_db"]}
    return Intelligibility([t.name for t in tasks], accuracy, distance, len(train.waves), len(test.waves))
