"""What every section of the report reads: the loaded run, the corpus and its split, and the examples.

:func:`load_context` loads the run and the corpus once; the sections (:mod:`vgim.report.sections`) read the
:class:`ReportContext` it returns. No HTML here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vgim.config import Config
from vgim.data.corpus import AudioCorpus, Utterance
from vgim.model.stack import Stack

__all__ = ["MAX_EXAMPLE_SECONDS", "Example", "ReportContext", "describe", "load_context", "method_name"]

#: Examples longer than this are cropped (traversals decode every latent dimension of the example).
MAX_EXAMPLE_SECONDS = 4.0


@dataclass
class Example:
    """One example utterance (cropped to :data:`MAX_EXAMPLE_SECONDS`)."""

    index: int
    utterance: Utterance
    wave: np.ndarray
    segments: list[tuple[int, int]] | None
    syllables: list[str] | None
    label: str


def method_name(model: Stack) -> str:
    """The method a model was trained with: V-GIM, variational CPC, GIM or CPC."""
    cfg = model.config
    n = model.n_modules
    if model.cfg.variational:
        return "V-GIM" if n > 1 else "variational CPC"
    if cfg is not None and cfg.train.mode == "end_to_end":
        return "CPC"
    return "GIM" if n > 1 else "CPC"


def describe(u: Utterance, speaker_key: str) -> str:
    """A short label of an utterance: its speaker and its word (or file name)."""
    parts = []
    if speaker_key in u.labels:
        parts.append(u.labels[speaker_key])
    word = u.labels.get("syllables") or u.labels.get("word")
    parts.append(f"'{word}'" if word else Path(u.path).name)
    return " ".join(parts)


@dataclass
class ReportContext:
    """The run, its corpus and split, the examples, and the settings of :func:`vgim.report.build_report`.

    ``decoders`` is filled by the reconstruction section (:mod:`vgim.report.sections.decoders`) and read by
    the traversal and interpolation sections; it stays empty when the reconstruction section fails.
    """

    run_dir: Path
    out: Path
    model: Stack
    cfg: Config
    name: str
    method: str
    speaker_key: str
    corpus: AudioCorpus
    corpus_source: str
    train: AudioCorpus
    test: AudioCorpus
    split_how: str
    decoder_steps: int
    progress: bool
    seed: int
    examples: list[Example] = field(default_factory=list)
    decoders: dict[int, Any] = field(default_factory=dict)
    traversal_origin: str = "latent"

    def example(self, corpus: AudioCorpus, i: int) -> Example:
        """Utterance ``i`` of ``corpus`` as an :class:`Example`, cropped to :data:`MAX_EXAMPLE_SECONDS`."""
        u, wave = corpus.utterances[i], corpus.waves[i]
        limit = int(MAX_EXAMPLE_SECONDS * corpus.sample_rate)
        wave = np.asarray(wave[:limit], dtype=np.float32)
        segments: list[tuple[int, int]] | None = None
        syllables: list[str] | None = None
        if u.segments:
            keep = [(s, min(e, wave.shape[0])) for s, e in u.segments if s < wave.shape[0]]
            segments = keep or None
            names = u.labels.get("syllables", "").split("-") if u.labels.get("syllables") else []
            if segments and len(names) == len(u.segments):
                syllables = names[: len(segments)]
        return Example(i, u, wave, segments, syllables, describe(u, self.speaker_key))

    def pick_examples(self, n_examples: int) -> list[Example]:
        """``n_examples`` test utterances, one per speaker first (in corpus order), then the next ones."""
        n = max(1, n_examples)
        chosen: list[int] = []
        seen: set[str | None] = set()
        for i, u in enumerate(self.test.utterances):
            spk = u.labels.get(self.speaker_key)
            if len(chosen) < n and spk not in seen:
                chosen.append(i)
                seen.add(spk)
        for i in range(len(self.test)):
            if len(chosen) < n and i not in chosen:
                chosen.append(i)
        return [self.example(self.test, i) for i in chosen]

    def corpus_summary(self) -> dict[str, Any]:
        """``report.json["corpus"]``: where the corpus came from, its split and the examples."""
        return {
            "source": self.corpus_source,
            "description": self.corpus.describe(),
            "split": self.split_how,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "examples": [
                {"path": e.utterance.path, "label": e.label, "seconds": e.wave.shape[0] / self.corpus.sample_rate}
                for e in self.examples
            ],
        }


def load_context(
    run_dir: Path,
    out: Path,
    corpus: AudioCorpus | None,
    *,
    decoder_steps: int,
    n_examples: int,
    traversal_origin: str = "latent",
    progress: bool,
    seed: int,
    say: Callable[[str], None],
) -> ReportContext:
    """Load the run and the corpus (``None``: the embedded synthetic one), split it and pick the examples."""
    import vgim
    from vgim.config import DataConfig
    from vgim.data.corpus import load_corpus
    from vgim.data.source import corpus_location
    from vgim.evaluate.evaluation import train_test_split

    say(f"loading {run_dir}")
    model = vgim.load(run_dir, device="cpu")
    cfg = model.config
    if cfg is None:
        raise ValueError(f"{run_dir}: the loaded model has no config")
    if corpus is None:
        # the run's own embedded corpus (clean, or noisy as in the demo), else the clean one
        root, manifest = corpus_location(cfg.data if cfg.data.root == "synthetic" else DataConfig(), progress=progress)
        corpus = load_corpus(root, manifest=manifest, progress=progress)
        corpus_source = f"the embedded synthetic corpus ({root})"
    else:
        corpus_source = "the corpus passed to build_report"
    train, test, split_how = train_test_split(corpus, seed)
    ctx = ReportContext(
        run_dir=run_dir,
        out=out,
        model=model,
        cfg=cfg,
        name=cfg.name or run_dir.name,
        method=method_name(model),
        speaker_key=cfg.data.speaker_key or "speaker",
        corpus=corpus,
        corpus_source=corpus_source,
        train=train,
        test=test,
        split_how=split_how,
        decoder_steps=decoder_steps,
        progress=progress,
        seed=seed,
        traversal_origin=traversal_origin,
    )
    ctx.examples = ctx.pick_examples(n_examples)
    return ctx
