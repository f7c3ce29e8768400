"""Real recorded speech offline: Debian's Asterisk voice prompts as a corpus, English with phone alignments.

Sources (vgim installs nothing; each missing one stops :func:`build_prompts_corpus` with a
:class:`MissingSourceError` naming the package):

* the Debian packages ``asterisk-core-sounds-{en,es,fr,it,ru}-g722``: the prompts of one professional
  voice per language, G.722 at 64 kbit/s, 16 kHz, under ``/usr/share/asterisk/sounds/<voice folder>/``
  (:data:`VOICES`; English and Spanish are the same speaker, Allison Smith);
* ``asterisk-core-sounds-en``: ``core-sounds-en.txt.gz``, one ``<prompt>: <transcript>`` line per English
  prompt;
* the PyPI packages ``G722`` (decoding; public domain) and ``pocketsphinx`` (alignment; BSD), both in the
  ``prompts`` extra.

Licences, from ``/usr/share/doc/<package>/copyright`` (the same file in every package; its paragraphs
``Files: *``, ``fr-*``, ``it-*`` and ``ru-*`` name the upstream tarballs): English and Spanish CC-BY-SA-3.0
(Allison Smith), French CC-BY-SA-3.0 (June Wallack), Italian CC-BY-3.0 (Carlo Flora), Russian CC-BY-3.0
(Maxim Topal, ivrvoice.ru). The copyright files are copied into ``<out>/licenses/`` with the audio.

Output (``<out>``)::

    prompts/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac   16 kHz, 16-bit, the LibriSpeech layout
    prompts/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt    English: the words aligned, upper case
    manifest.csv                 path, utterance, speaker, language, prompt, split (one row per file)
    converted_aligned_phones.txt English: one line per aligned utterance, one label per 10 ms frame
    phones.txt                   the label of each phone class ("0 SIL" ... "39 ZH")
    train_split.txt, test_split.txt   the aligned English utterances of each split
    summary.json                 sources, licences, counts, minutes, the alignment and why some did not align
    licenses/<package>.copyright
    cache/alignments.jsonl       the alignment cache (rerunning aligns only what it lacks)

``<speaker>`` is the voice's number (1 Allison, 2 June, 3 Carlo, 4 the Russian voice), ``<chapter>`` the
language's (1 en, 2 es, 3 fr, 4 it, 5 ru) and ``<utt>`` the prompt's rank by name, so ``vgim experiment
librispeech --root <out> --subset prompts --alignments <out>/converted_aligned_phones.txt --train-split
<out>/train_split.txt --test-split <out>/test_split.txt`` reads it as LibriSpeech. The audio is FLAC, not
WAV, because that recipe reads ``.flac`` files; both are lossless. The ``silence/`` prompts (digital silence)
and empty files are left out and counted. The split is by utterance: per language (one voice each) a
seeded, deterministic ``test_fraction`` of the prompts (rounded, at least one), the first in an order
hashed from the seed and the prompt names.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from vgim.data.phone_align import (
    PHONES,
    AlignmentCache,
    MissingSourceError,
    PhoneAligner,
    frame_labels,
    normalise_transcript,
    write_phone_map,
)
from vgim.frames import SAMPLE_RATE

__all__ = ["LANGUAGES", "VOICES", "MissingSourceError", "PromptsResult", "Voice", "build_prompts_corpus"]

log = logging.getLogger("vgim")

#: Where the Debian packages put the prompts and their documentation.
SOUNDS_DIR = Path("/usr/share/asterisk/sounds")
DOCS_DIR = Path("/usr/share/doc")
#: The LibriSpeech "subset" folder the audio goes in.
SUBSET = "prompts"
#: Prompts left out: digital silence of 1..10 s.
_EXCLUDED_FOLDERS = ("silence",)
#: Shorter files have no complete 10 ms frame.
PHONE_FRAME_SAMPLES = 160


@dataclass(frozen=True)
class Voice:
    """One language's prompts: its Debian package, folder, speaker and licence."""

    language: str
    folder: str
    speaker: str
    speaker_number: int
    chapter: int
    recorded_by: str
    licence: str

    @property
    def package(self) -> str:
        return f"asterisk-core-sounds-{self.language}-g722"


VOICES: dict[str, Voice] = {
    v.language: v
    for v in (
        Voice("en", "en_US_f_Allison", "allison", 1, 1, "Allison Smith", "CC-BY-SA-3.0"),
        Voice("es", "es_MX_f_Allison", "allison", 1, 2, "Allison Smith", "CC-BY-SA-3.0"),
        Voice("fr", "fr_CA_f_June", "june", 2, 3, "June Wallack", "CC-BY-SA-3.0"),
        Voice("it", "it_IT_m_Carlo", "carlo", 3, 4, "Carlo Flora", "CC-BY-3.0"),
        Voice("ru", "ru_RU_f_IvrvoiceRU", "ivrvoice-ru", 4, 5, "Maxim Topal (ivrvoice.ru)", "CC-BY-3.0"),
    )
}
LANGUAGES = tuple(VOICES)
#: The package with the English transcripts, and the file in it.
TRANSCRIPT_PACKAGE = "asterisk-core-sounds-en"
TRANSCRIPT_FILE = "core-sounds-en.txt.gz"
#: What the corpus folder holds beside the audio (the CPC alignment file's name, as the recipe expects).
MANIFEST_FILE = "manifest.csv"
ALIGNMENT_FILE = "converted_aligned_phones.txt"


@dataclass
class PromptsResult:
    """What :func:`build_prompts_corpus` wrote and counted.

    Attributes
    ----------
    out_dir
        The output folder.
    summary
        The content of ``summary.json``: per language the package, licence, files and minutes; the splits;
        for English how many utterances aligned (``aligned``, of which ``cached`` came from the cache) and,
        per reason, the prompts that did not (``not_aligned``).
    """

    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A few lines for the terminal: files and minutes per language, the alignment and its failures."""
        s = self.summary
        lines = [
            f"{lang}: {v['files']} files, {v['minutes']:.1f} min ({v['train']} train / {v['test']} test), "
            f"{v['package']}, {v['licence']}"
            for lang, v in s["languages"].items()
        ]
        for reason, prompts in s["left_out"].items():
            lines.append(f"left out ({reason}): {len(prompts)}: {', '.join(prompts[:6])}")
        a = s.get("alignment")
        if a:
            lines.append(
                f"English alignment: {a['aligned']} of {a['candidates']} utterances aligned ({a['cached']} from the "
                f"cache, {a['new']} new, {a['seconds']:.0f} s)"
            )
            for reason, prompts in a["not_aligned"].items():
                lines.append(f"  not aligned, {reason}: {len(prompts)}: {', '.join(prompts[:6])}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- sources


def _decoder() -> Any:
    try:
        from G722 import G722
    except ImportError:
        raise MissingSourceError(
            "decoding the G.722 prompts needs the PyPI package G722: pip install 'vgim[prompts]' (or pip install G722)"
        ) from None
    return G722


def decode_g722(path: Path) -> np.ndarray:
    """The ``int16`` samples at 16 kHz of a raw G.722 file (64 kbit/s, as Asterisk stores them)."""
    g722 = _decoder()
    return np.frombuffer(g722(SAMPLE_RATE, 64000).decode(path.read_bytes()), dtype=np.int16).copy()


def _package_version(package: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _prompt_files(voice: Voice, sounds_dir: Path) -> list[tuple[str, Path]]:
    """``(prompt, path)`` of every ``.g722`` file of ``voice``, sorted by prompt (e.g. ``digits/1``)."""
    folder = sounds_dir / voice.folder
    files = sorted(folder.rglob("*.g722")) if folder.is_dir() else []
    if not files:
        raise MissingSourceError(
            f"no G.722 prompts in {folder}: install the Debian package {voice.package} "
            f"(apt-get install {voice.package})"
        )
    return sorted((f.relative_to(folder).with_suffix("").as_posix(), f) for f in files)


def read_transcripts(path: Path) -> dict[str, str]:
    """``prompt -> transcript`` of ``core-sounds-en.txt(.gz)`` (lines ``name: text``; ``;`` starts a comment).

    Raises
    ------
    MissingSourceError
        The file does not exist (the message names the Debian package).
    """
    if not path.is_file():
        raise MissingSourceError(
            f"English transcripts {path} not found: install the Debian package {TRANSCRIPT_PACKAGE} "
            f"(apt-get install {TRANSCRIPT_PACKAGE})"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[str, str] = {}
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.strip().partition(":")
            if sep and name and not name.startswith(";"):
                out[name.strip()] = text.strip()
    return out


def _hash_rank(prompts: list[str], language: str, seed: int) -> dict[str, int]:
    """Each prompt's rank in a seeded hash order (the first ranks go to the test split)."""
    digest = {p: hashlib.sha256(f"{seed}/{language}/{p}".encode()).hexdigest() for p in prompts}
    return {p: r for r, p in enumerate(sorted(prompts, key=digest.__getitem__))}


# ---------------------------------------------------------------------------- the command


@dataclass
class _Utt:
    voice: Voice
    prompt: str
    uid: str
    path: Path
    pcm: np.ndarray
    split: str = "train"


def build_prompts_corpus(
    out: str | Path,
    *,
    languages: tuple[str, ...] | list[str] = LANGUAGES,
    limit: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    align: bool = True,
    sounds_dir: str | Path | None = None,
    docs_dir: str | Path | None = None,
    progress: bool = True,
) -> PromptsResult:
    """Decode the Asterisk prompts into a LibriSpeech-layout corpus with a manifest and English phone labels.

    Parameters
    ----------
    out
        Output folder (created; files of an earlier run are overwritten, the alignment cache is reused).
    languages
        Languages to include, from :data:`LANGUAGES` (``en es fr it ru``).
    limit
        At most this many prompts per language (the first by name, before leaving out silence); ``None``: all.
    test_fraction
        Fraction of each language's prompts in the test split, in ``[0, 1)``; at least one when a language has
        two prompts or more and the fraction is above 0.
    seed
        Seed of the split.
    align
        Align the English prompts (needs ``en`` in ``languages``, the transcripts and pocketsphinx).
    sounds_dir, docs_dir
        Where the Debian packages put the prompts and their documentation (default :data:`SOUNDS_DIR`,
        :data:`DOCS_DIR`).
    progress
        Progress bars.

    Returns
    -------
    PromptsResult

    Raises
    ------
    MissingSourceError
        A Debian or PyPI package is not installed (named in the message), before anything is written.
    ValueError
        An unknown language, ``limit < 1`` or ``test_fraction`` outside ``[0, 1)``.
    """
    t0 = time.perf_counter()
    languages = tuple(dict.fromkeys(lang.strip() for lang in languages if lang.strip()))
    unknown = [lang for lang in languages if lang not in VOICES]
    if unknown or not languages:
        raise ValueError(f"unknown language(s) {unknown or languages!r}: expected some of {', '.join(LANGUAGES)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    sounds_dir, docs_dir, out_dir = Path(sounds_dir or SOUNDS_DIR), Path(docs_dir or DOCS_DIR), Path(out)

    # every source first, so a missing one stops before anything is written
    _decoder()
    files = {lang: _prompt_files(VOICES[lang], sounds_dir)[:limit] for lang in languages}
    align = align and "en" in languages
    transcripts: dict[str, str] = {}
    aligner: PhoneAligner | None = None
    if align:
        transcripts = read_transcripts(docs_dir / TRANSCRIPT_PACKAGE / TRANSCRIPT_FILE)
        aligner = PhoneAligner()

    base = out_dir / SUBSET
    utts: list[_Utt] = []
    left_out: dict[str, list[str]] = {}
    summary_langs: dict[str, dict[str, Any]] = {}
    n_files = sum(len(f) for f in files.values())
    bar = tqdm(total=n_files, desc="decoding prompts", unit="file", disable=not progress)
    for lang in languages:
        voice = VOICES[lang]
        kept: list[_Utt] = []
        for prompt, path in files[lang]:
            bar.update(1)
            if prompt.split("/")[0] in _EXCLUDED_FOLDERS:
                left_out.setdefault("silence prompt", []).append(f"{lang}/{prompt}")
                continue
            pcm = decode_g722(path)
            if pcm.size < PHONE_FRAME_SAMPLES:
                left_out.setdefault("empty file", []).append(f"{lang}/{prompt} ({path})")
                continue
            uid = f"{voice.speaker_number}-{voice.chapter}-{len(kept):04d}"
            kept.append(
                _Utt(voice, prompt, uid, base / str(voice.speaker_number) / str(voice.chapter) / f"{uid}.flac", pcm)
            )
        ranks = _hash_rank([u.prompt for u in kept], lang, seed)
        n_test = int(round(test_fraction * len(kept)))
        if test_fraction > 0 and len(kept) >= 2:
            n_test = min(max(n_test, 1), len(kept) - 1)
        for u in kept:
            u.split = "test" if ranks[u.prompt] < n_test else "train"
            u.path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(u.path), u.pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        copyright_file = docs_dir / voice.package / "copyright"
        if copyright_file.is_file():
            (out_dir / "licenses").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copyright_file, out_dir / "licenses" / f"{voice.package}.copyright")
        summary_langs[lang] = {
            "package": voice.package,
            "version": _package_version(voice.package),
            "voice": voice.recorded_by,
            "speaker": voice.speaker,
            "licence": voice.licence,
            "copyright_file": str(copyright_file) if copyright_file.is_file() else None,
            "files": len(kept),
            "minutes": sum(u.pcm.size for u in kept) / SAMPLE_RATE / 60,
            "train": sum(u.split == "train" for u in kept),
            "test": sum(u.split == "test" for u in kept),
        }
        utts += kept
    bar.close()
    _write_manifest(out_dir / MANIFEST_FILE, utts)
    summary: dict[str, Any] = {
        "out": str(out_dir),
        "subset": SUBSET,
        "languages": summary_langs,
        "left_out": left_out,
        "limit": limit,
        "test_fraction": test_fraction,
        "seed": seed,
    }
    if aligner is not None:
        summary["alignment"] = _align_english(
            out_dir, [u for u in utts if u.voice.language == "en"], transcripts, aligner, progress
        )
    summary["seconds"] = time.perf_counter() - t0
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return PromptsResult(out_dir, summary)


def _write_manifest(path: Path, utts: list[_Utt]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "utterance", "speaker", "language", "prompt", "split"])
        for u in utts:
            rel = u.path.relative_to(path.parent).as_posix()
            w.writerow([rel, u.uid, u.voice.speaker, u.voice.language, u.prompt, u.split])


def _align_english(
    out_dir: Path, utts: list[_Utt], transcripts: dict[str, str], aligner: PhoneAligner, progress: bool
) -> dict[str, Any]:
    """Align every English utterance (reusing the cache), write the CPC files; the alignment's summary."""
    t0 = time.perf_counter()
    cache = AlignmentCache(out_dir / "cache" / "alignments.jsonl")
    not_aligned: dict[str, list[str]] = {}
    lines: list[str] = []
    trans: dict[Path, list[str]] = {}
    splits: dict[str, list[str]] = {"train": [], "test": []}
    n_cached = n_new = 0
    for u in tqdm(utts, desc="aligning English prompts", unit="utt", disable=not progress):
        text = transcripts.get(u.prompt)
        if text is None:
            not_aligned.setdefault("no transcript", []).append(u.prompt)
            continue
        words = normalise_transcript(text)
        if words.problem:
            not_aligned.setdefault(words.problem.split(" (")[0], []).append(u.prompt)
            continue
        oov = aligner.missing_words(words.words)
        if oov:
            not_aligned.setdefault("words not in CMUdict", []).append(f"{u.prompt} ({' '.join(oov)})")
            continue
        key = AlignmentCache.key(u.pcm, words.words, aligner.version)
        result = cache.get(key)
        if result is None:
            try:
                result = aligner.align(u.pcm, words.words)
            except RuntimeError as err:
                result = str(err)
            cache.put(key, u.prompt, result)
            n_new += 1
        else:
            n_cached += 1
        if isinstance(result, str):
            not_aligned.setdefault("alignment failed", []).append(f"{u.prompt} ({result})")
            continue
        labels = frame_labels(result, u.pcm.size)
        lines.append(u.uid + " " + " ".join(map(str, labels.tolist())))
        trans.setdefault(u.path.parent, []).append(f"{u.uid} {' '.join(words.words).upper()}")
        splits[u.split].append(u.uid)
    (out_dir / ALIGNMENT_FILE).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    write_phone_map(out_dir / "phones.txt")
    for split, ids in splits.items():
        (out_dir / f"{split}_split.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    for folder, rows in trans.items():
        speaker, chapter = folder.parent.name, folder.name
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {
        "aligner": f"{aligner.version} (en-us model, CMUdict)",
        "transcripts": TRANSCRIPT_PACKAGE + "/" + TRANSCRIPT_FILE,
        "candidates": len(utts),
        "aligned": len(lines),
        "cached": n_cached,
        "new": n_new,
        "train": len(splits["train"]),
        "test": len(splits["test"]),
        "label_frames": sum(len(line.split()) - 1 for line in lines),
        "phone_classes": len(PHONES),
        "not_aligned": not_aligned,
        "reason_counts": {k: len(v) for k, v in not_aligned.items()},
        "seconds": time.perf_counter() - t0,
    }
