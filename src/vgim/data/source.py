"""Where audio comes from: open the corpus a :class:`~vgim.config.DataConfig` names, and make its batches.

``data.root = "synthetic"`` is the embedded espeak-ng corpus (synthesised once and cached); anything else is a
folder of audio files with an optional manifest or file-name pattern (:func:`vgim.data.corpus.load_corpus`).
Every command that reads "the run's data" goes through :func:`open_corpus`, and training batches are made
here (:func:`build_batches`, :func:`batches_from_corpus`), in memory or streamed from disk.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vgim.config import Config, DataConfig
from vgim.data.batches import CropBatches
from vgim.data.corpus import AudioCorpus, load_corpus

if TYPE_CHECKING:
    from vgim.data.stream import StreamingBatches

__all__ = ["batches_from_corpus", "build_batches", "corpus_location", "open_corpus"]

log = logging.getLogger("vgim")


def corpus_location(data: DataConfig, *, progress: bool = True) -> tuple[str, str]:
    """``(root, manifest)`` of the corpus ``data`` names; the embedded corpus is synthesised on first use."""
    if data.root == "synthetic":
        from vgim.data.synthetic import synthesize_corpus

        snr = data.synthetic_noise_snr_db
        path = synthesize_corpus(noise_snr_db=(snr[0], snr[1]) if snr else None, progress=progress)
        return str(path.parent), str(path)
    return data.root, data.manifest


def open_corpus(data: DataConfig, *, split: str = "", min_samples: int = 0, progress: bool = True) -> AudioCorpus:
    """Load the corpus ``data`` names (every split unless ``split`` names one), skipping and counting bad files."""
    root, manifest = corpus_location(data, progress=progress)
    return load_corpus(
        root,
        manifest=manifest,
        label_pattern=data.label_pattern,
        split=split,
        sample_rate=data.sample_rate,
        min_samples=min_samples,
        min_rms=data.min_rms,
        progress=progress,
    )


def build_batches(cfg: Config, progress: bool = True) -> CropBatches | StreamingBatches:
    """Load the training audio named by ``cfg.data`` and wrap it in step-seeded crop batches.

    With ``data.stream`` nothing is decoded here: the files' headers are read, and every batch reads its
    crops from disk (:class:`vgim.data.stream.StreamingBatches`; the same batches for the same files).
    """
    d = cfg.data
    if d.stream:
        from vgim.data.stream import streaming_batches

        root, manifest = corpus_location(d, progress=progress)
        return streaming_batches(cfg, root, manifest, progress=progress)
    corpus = open_corpus(d, split=d.split, min_samples=0 if d.pad_short else d.crop_samples, progress=progress)
    log.info("training data: %s", corpus.describe())
    return batches_from_corpus(cfg, corpus)


def batches_from_corpus(cfg: Config, corpus: AudioCorpus) -> CropBatches:
    """Crop batches over an already loaded corpus, with the augmentation and speaker ids ``cfg`` asks for."""
    from vgim.data.augment import Augmenter

    keep = list(range(len(corpus)))
    if not cfg.data.pad_short:
        keep = [i for i in keep if corpus.waves[i].shape[0] >= cfg.data.crop_samples]
        for i in sorted(set(range(len(corpus))) - set(keep)):
            log.warning(
                "%s: shorter than one crop (%d < %d samples)",
                corpus.utterances[i].path,
                corpus.waves[i].shape[0],
                cfg.data.crop_samples,
            )
        if len(keep) < len(corpus):
            log.warning(
                "skipped %d of %d files shorter than one crop (set data.pad_short=true to pad them)",
                len(corpus) - len(keep),
                len(corpus),
            )
    if not keep:
        raise ValueError(f"no training file is at least one crop long ({cfg.data.crop_samples} samples)")
    speakers = None
    if cfg.objective.negatives == "same_speaker":
        labels = corpus.labels(cfg.data.speaker_key)
        speakers = [labels[i] for i in keep]
    augment = Augmenter.from_config(cfg.data)
    return CropBatches(
        [corpus.waves[i] for i in keep],
        cfg.data.crop_samples,
        cfg.train.batch_size,
        seed=cfg.train.seed,
        speakers=speakers,
        augment=augment if augment.enabled else None,
        fixed=cfg.data.crops == "fixed",
    )
