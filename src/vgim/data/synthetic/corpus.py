"""The synthetic corpus on disk: the utterance plan, the cached folder, ``manifest.csv`` and its summary."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from vgim.data.synthetic.espeak import BASE_VOICE, MAX_SPEAKERS, VOICES, engine
from vgim.data.synthetic.render import render
from vgim.data.synthetic.words import TEST_FRACTION, find_cover, split_words, word_labels
from vgim.frames import SAMPLE_RATE

__all__ = ["MANIFEST_COLUMNS", "SYNTH_VERSION", "default_corpus_dir", "describe_corpus", "synthesize_corpus"]

log = logging.getLogger("vgim")

#: Bump when anything changes the generated audio or manifest (part of the cache key).
SYNTH_VERSION = 1

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "word",
    "syllables",
    "consonants",
    "vowels",
    "speaker",
    "pitch",
    "rate",
    "split",
    "segments",
    "stress",
)


# ---------------------------------------------------------------------------------------------------------
# Corpus plan


@dataclass(frozen=True)
class _Item:
    """One utterance to synthesise (all randomness already drawn)."""

    speaker: int
    word: str
    n: int
    split: str
    pitch: int
    pitch_range: int
    rate: int
    stress: int
    peak_db: float

    @property
    def path(self) -> str:
        return f"spk{self.speaker}/{self.word}_{self.n}.wav"


def _split_counts(n_speakers: int, words_per_speaker: int) -> list[int]:
    """Test utterances per speaker: ~20 % overall, at least 3 (one cover of the 9 syllables), spread evenly."""
    total = n_speakers * words_per_speaker
    n_test = max(3, round(TEST_FRACTION * total))
    return [n_test // n_speakers + (1 if s < n_test % n_speakers else 0) for s in range(n_speakers)]


def _assign(
    pool: Sequence[str], counts: Sequence[int], cover: Sequence[str], rng: np.random.Generator
) -> list[list[str]]:
    """Words for each speaker from ``pool``: the cover words go to the first slots (round-robin over
    speakers, so they are actually used), the rest are an independent random draw per speaker (without
    repetition until a speaker has used the whole pool)."""
    slots = [(s, j) for j in range(max(counts, default=0)) for s in range(len(counts)) if j < counts[s]]
    fixed: list[list[str]] = [[] for _ in counts]
    for (s, _), w in zip(slots, cover, strict=False):
        fixed[s].append(w)
    out: list[list[str]] = []
    for s, k in enumerate(counts):
        words = list(fixed[s])
        rest = [w for w in pool if w not in words]
        while len(words) < k:
            words.extend(rest[i] for i in rng.permutation(len(rest))[: k - len(words)])
            rest = list(pool)
        out.append(words)
    return out


def _plan(n_speakers: int, words_per_speaker: int, seed: int) -> list[_Item]:
    """Every utterance of the corpus, in synthesis order (speaker by speaker)."""
    train_pool, test_pool = split_words(seed)
    rng = np.random.default_rng([seed, 202])
    n_test = _split_counts(n_speakers, words_per_speaker)
    n_train = [words_per_speaker - k for k in n_test]
    cover_test = find_cover(test_pool, rng) or ()
    cover_train = find_cover(train_pool, rng) or ()
    test_words = _assign(test_pool, n_test, cover_test, rng)
    train_words = _assign(train_pool, n_train, cover_train, rng)

    items: list[_Item] = []
    for s in range(n_speakers):
        voice = VOICES[s]
        spk_rng = np.random.default_rng([seed, 303, s])
        words = [(w, "train") for w in train_words[s]] + [(w, "test") for w in test_words[s]]
        seen: Counter[str] = Counter()
        for i in spk_rng.permutation(len(words)):
            word, split = words[i]
            items.append(
                _Item(
                    speaker=s,
                    word=word,
                    n=seen[word],
                    split=split,
                    pitch=int(np.clip(voice.pitch + spk_rng.integers(-4, 5), 0, 100)),
                    pitch_range=int(np.clip(voice.pitch_range + spk_rng.integers(-8, 9), 0, 100)),
                    rate=int(round(voice.rate * spk_rng.uniform(0.9, 1.1))),
                    stress=int(spk_rng.integers(0, 3)),
                    peak_db=float(spk_rng.uniform(-6.0, -2.0)),
                )
            )
            seen[word] += 1
    return items


# ---------------------------------------------------------------------------------------------------------
# Corpus folder


def _params(
    n_speakers: int,
    words_per_speaker: int,
    seed: int,
    sample_rate: int,
    noise_snr_db: tuple[float, float] | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "version": SYNTH_VERSION,
        "n_speakers": n_speakers,
        "words_per_speaker": words_per_speaker,
        "seed": seed,
        "sample_rate": sample_rate,
    }
    if noise_snr_db is not None:  # only when set, so that the clean corpora keep their folder names
        params["noise_snr_db"] = [float(noise_snr_db[0]), float(noise_snr_db[1])]
    return params


def _add_noise(audio: np.ndarray, snr_db: tuple[float, float], peak_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus stationary coloured noise at an SNR drawn from ``snr_db`` (the power of the whole
    utterance against the noise's), at ``peak_db`` again. The colour is drawn too: white noise through a
    one-pole low-pass of coefficient 0 (white) to 0.9 (a dull rumble)."""
    from scipy.signal import lfilter

    snr = rng.uniform(snr_db[0], snr_db[1])
    tilt = rng.uniform(0.0, 0.9)
    noise = lfilter([1.0 - tilt], [1.0, -tilt], rng.standard_normal(len(audio)))
    power = float(np.mean(audio.astype(np.float64) ** 2))
    noise *= np.sqrt(power / 10 ** (snr / 10) / max(float(np.mean(noise**2)), 1e-12))
    mixed = audio + noise
    return (mixed * (10 ** (peak_db / 20) / max(float(np.abs(mixed).max()), 1e-9))).astype(np.float32)


def default_corpus_dir(
    *,
    n_speakers: int = 8,
    words_per_speaker: int = 60,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    noise_snr_db: tuple[float, float] | None = None,
) -> Path:
    """``$VGIM_CACHE/synthetic-<hash>`` (or ``~/.cache/vgim/synthetic-<hash>``); the hash covers all
    parameters and :data:`SYNTH_VERSION`."""
    params = _params(n_speakers, words_per_speaker, seed, sample_rate, noise_snr_db)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    env = os.environ.get("VGIM_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "vgim"
    return root / f"synthetic-{digest}"


def _is_complete(out_dir: Path, params: dict[str, Any], n_rows: int) -> bool:
    """True when ``out_dir`` holds a finished corpus made with ``params``."""
    manifest = out_dir / "manifest.csv"
    try:
        info = json.loads((out_dir / "corpus.json").read_text(encoding="utf-8"))
        if info.get("params") != params:
            return False
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                return False
            rows = list(reader)
    except (OSError, ValueError):
        return False
    return len(rows) == n_rows and all((out_dir / r["path"]).is_file() for r in rows)


def _replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temp file onto ``path`` (never a half-written ``path``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def synthesize_corpus(
    out_dir: str | Path | None = None,
    *,
    n_speakers: int = 8,
    words_per_speaker: int = 60,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    noise_snr_db: tuple[float, float] | None = None,
    progress: bool = True,
) -> Path:
    """Synthesise the nonsense-word corpus (or reuse a finished one) and return its ``manifest.csv``.

    Parameters
    ----------
    out_dir
        Target folder; ``None`` = :func:`default_corpus_dir` for these parameters.
    n_speakers
        Number of voices, 1 to :data:`MAX_SPEAKERS`; speakers are ``spk0 .. spk<n-1>``.
    words_per_speaker
        Utterances per speaker; ``n_speakers * words_per_speaker`` must be at least 6 so that both
        splits can contain every syllable.
    seed
        Seeds the word split, word choice and per-word prosody (pitch, range, rate, stress, level).
    sample_rate
        Sample rate of the WAV files (``segments`` are always at 16 kHz).
    noise_snr_db
        ``(low, high)``: mix every word with stationary coloured noise at an SNR drawn uniformly from this
        range (in dB; the colour is drawn too, see :func:`_add_noise`), the same for a given ``seed``;
        ``None`` (the default) keeps the words clean. The demo uses ``(5, 25)``.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``<out_dir>/manifest.csv``. Same parameters -> byte-identical files. When the folder already holds a
        complete corpus made with the same parameters, nothing is synthesised.

    Raises
    ------
    RuntimeError
        If the espeak-ng library (``espeakng-loader``) cannot be loaded or initialised.
    """
    if not 1 <= n_speakers <= MAX_SPEAKERS:
        raise ValueError(f"n_speakers must be in [1, {MAX_SPEAKERS}], got {n_speakers}")
    if words_per_speaker < 1 or n_speakers * words_per_speaker < 6:
        raise ValueError(
            "need words_per_speaker >= 1 and n_speakers * words_per_speaker >= 6 (3 train + 3 test words "
            f"to cover the 9 syllables in both splits), got {n_speakers} x {words_per_speaker}"
        )
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if noise_snr_db is not None and (len(noise_snr_db) != 2 or noise_snr_db[0] > noise_snr_db[1]):
        raise ValueError(f"noise_snr_db must be (low, high) with low <= high, got {noise_snr_db}")
    params = _params(n_speakers, words_per_speaker, seed, sample_rate, noise_snr_db)
    out = (
        default_corpus_dir(
            n_speakers=n_speakers,
            words_per_speaker=words_per_speaker,
            seed=seed,
            sample_rate=sample_rate,
            noise_snr_db=noise_snr_db,
        )
        if out_dir is None
        else Path(out_dir)
    )
    manifest = out / "manifest.csv"
    n_rows = n_speakers * words_per_speaker
    if _is_complete(out, params, n_rows):
        return manifest

    eng = engine()  # fail early (RuntimeError) if espeak-ng is unusable
    out.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        manifest.unlink()  # stale or incomplete: it must not look complete while we rewrite
    items = _plan(n_speakers, words_per_speaker, seed)
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    rows: list[dict[str, str]] = []
    for i, item in enumerate(tqdm(items, desc="synthesising corpus", unit="word", disable=not progress)):
        audio, segments = render(
            item.word,
            item.speaker,
            pitch=item.pitch,
            pitch_range=item.pitch_range,
            rate=item.rate,
            stress=item.stress,
            sample_rate=sample_rate,
            peak_db=item.peak_db,
        )
        if noise_snr_db is not None:
            audio = _add_noise(audio, noise_snr_db, item.peak_db, np.random.default_rng([seed, 404, i]))
        wav = out / item.path
        wav.parent.mkdir(parents=True, exist_ok=True)
        _replace_atomically(wav, lambda p, a=audio: sf.write(p, a, sample_rate, subtype="PCM_16", format="WAV"))
        rows.append(
            {
                "path": item.path,
                **word_labels(item.word),
                "speaker": f"spk{item.speaker}",
                "pitch": str(item.pitch),
                "rate": str(item.rate),
                "split": item.split,
                "segments": ";".join(f"{s}:{e}" for s, e in segments),
                "stress": str(item.stress),
            }
        )

    info = {"params": params, "espeak_ng_version": eng.version, "espeak_voice": BASE_VOICE}
    _replace_atomically(
        out / "corpus.json",
        lambda p: p.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8"),
    )

    def write_manifest(p: Path) -> None:
        with p.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    _replace_atomically(manifest, write_manifest)
    log.info("synthesised %d words into %s in %.1f s", len(rows), out, time.perf_counter() - t0)
    return manifest


def describe_corpus(manifest: str | Path) -> dict[str, Any]:
    """Summary of a corpus manifest (reads only WAV headers).

    Returns
    -------
    dict
        ``n_utterances``; ``speakers`` and ``splits`` (label -> count); ``speaker_split``
        (``"spk0/train"`` -> count); ``word_types`` (split -> number of distinct words);
        ``syllables`` (split -> syllable -> count); ``duration_s`` (total) and ``duration_s_by_split``.
    """
    manifest = Path(manifest)
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    durations: dict[str, float] = {}
    words: dict[str, set[str]] = {}
    syllables: dict[str, Counter[str]] = {}
    for r in rows:
        info = sf.info(str(manifest.parent / r["path"]))
        durations[r["split"]] = durations.get(r["split"], 0.0) + info.frames / info.samplerate
        words.setdefault(r["split"], set()).add(r["word"])
        syllables.setdefault(r["split"], Counter()).update(r["syllables"].split("-"))
    return {
        "n_utterances": len(rows),
        "speakers": dict(sorted(Counter(r["speaker"] for r in rows).items())),
        "splits": dict(sorted(Counter(r["split"] for r in rows).items())),
        "speaker_split": dict(sorted(Counter(f"{r['speaker']}/{r['split']}" for r in rows).items())),
        "word_types": {k: len(v) for k, v in sorted(words.items())},
        "syllables": {k: dict(sorted(v.items())) for k, v in sorted(syllables.items())},
        "duration_s": float(sum(durations.values())),
        "duration_s_by_split": {k: float(v) for k, v in sorted(durations.items())},
    }
