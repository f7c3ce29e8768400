"""What makes GIM beat MFCC on the thesis corpus: one change at a time, from the thesis's setting.

``vgim experiment ablation`` trains every :data:`ABLATION` variant once (seed 0) on the training words of
the thesis corpus and probes every module per syllable on the held-out words, with mean and with
mean+std pooling, next to MFCC. It writes ``ablation.md`` and ``ablation.json``. Finished runs in the
output folder are reused when their config is the one the variant asks for (else it stops with an
error rather than mix configs). The test words are never used for training or for choosing a variant's
settings beyond this table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import vgim
from vgim.config import Config, load_config
from vgim.data.corpus import AudioCorpus
from vgim.evaluate.evaluation import (
    EvaluationSplit,
    mfcc_feature_set,
    model_feature_sets,
    random_init_model,
    validation_split,
)
from vgim.evaluate.probes import FeatureSet, ProbeResult, run_probes
from vgim.evaluate.tables import results_table, results_to_json
from vgim.experiments.thesis import THESIS_TASKS
from vgim.train.loop import batches_from_corpus
from vgim.train.rundir import RunDir

__all__ = ["ABLATION", "Variant", "run_ablation", "variant_config"]

log = logging.getLogger("vgim")


@dataclass(frozen=True)
class Variant:
    """A preset plus changes: typed ``overrides`` and, for the layers, a common ``width`` (channels of every
    conv/GRU layer), ``norm`` for every conv layer, and ``modules`` (layers per module; the layers beyond
    their sum are dropped)."""

    name: str
    preset: str
    overrides: tuple[str, ...] = ()
    width: int | None = None
    norm: Literal["none", "layer"] | None = None
    modules: tuple[int, ...] | None = None
    random_baseline: bool = False  # also probe a randomly initialised copy of the variant's encoder


_SMALL = ("data.crop_samples=10240",)
_SAME = ('objective.negatives="same_sequence"',)
_K3 = ("objective.n_predictions=3",)
_UNSHARED = "objective.share_negatives=false"

#: The variants: the first three change one thing of the thesis setting; from "64 ch" on each row adds its
#: change to the row above it, up to "+ K=3"; the next three each add one change to "+ K=3". The Gabor rows
#: replace the convolutions on the waveform with a filter bank; "+ batch negatives" and "+ shared negatives"
#: each change one thing of "Gabor front end, K=12", and the last three one thing of "+ shared negatives".
ABLATION: tuple[Variant, ...] = (
    Variant("thesis-draft GIM", "gim-thesis-draft", ("train.steps=1500",)),
    Variant("thesis-draft GIM, K=4", "gim-thesis-draft", ("train.steps=1500", "objective.n_predictions=4")),
    Variant("thesis-draft GIM, lr 1e-3", "gim-thesis-draft", ("train.steps=1500", "train.lr=1e-3")),
    Variant("64 ch, 10 ms frames, GRU", "gim-small", _SMALL),
    Variant("+ same-sequence negatives", "gim-small", _SMALL + _SAME),
    Variant("+ channel LayerNorm", "gim-small", _SMALL + _SAME, norm="layer"),
    Variant("+ K=3", "gim-small", _SMALL + _SAME + ("objective.n_predictions=3",), norm="layer"),
    Variant(
        "+ no GRU (modules 3, 2)",
        "gim-small",
        _SMALL + _SAME + ("objective.n_predictions=3",),
        norm="layer",
        modules=(3, 2),
    ),
    Variant(
        "+ K=3, white noise 0-15 dB",
        "gim-small",
        _SMALL + _SAME + _K3 + ("data.noise_snr_db=[0, 15]",),
        norm="layer",
    ),
    Variant("+ K=3, 3000 steps", "gim-small", _SMALL + _SAME + _K3 + ("train.steps=3000",), norm="layer"),
    # A learnable Gabor filter bank as the first layer (10 ms frames, 256 channels): see the preset.
    Variant("Gabor front end, K=3", "gim-thesis-improved", ("objective.n_predictions=3", _UNSHARED)),
    Variant("Gabor front end, K=12", "gim-thesis-improved", (_UNSHARED,)),
    Variant("+ batch negatives", "gim-thesis-improved", (_UNSHARED, 'objective.negatives="batch"')),
    Variant("+ shared negatives (= gim-thesis-improved)", "gim-thesis-improved", random_baseline=True),
    Variant("+ shared negatives, 1000 steps", "gim-thesis-improved", ("train.steps=1000",)),
    Variant("+ shared negatives, 128 ch", "gim-thesis-improved", width=128),
    Variant("+ shared negatives, 128 ch, K=20", "gim-thesis-improved", ("objective.n_predictions=20",), width=128),
)


def _slug(name: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())


def variant_config(variant: Variant, seed: int = 0, steps: int | None = None) -> Config:
    """The resolved config of ``variant`` (one torch thread: runs train side by side)."""
    extra = [*variant.overrides, "train.threads=1", f"train.seed={seed}"]
    if steps is not None:
        extra.append(f"train.steps={steps}")
    cfg = load_config(variant.preset, extra)
    layers = list(cfg.model.layers)
    modules = list(variant.modules) if variant.modules is not None else list(cfg.model.modules)
    layers = layers[: sum(modules)]
    if variant.width is not None:
        wide = {"conv", "gru"}  # the filter bank keeps its filters, pooling has no channels of its own
        layers = [dataclasses.replace(ly, channels=variant.width) if ly.kind in wide else ly for ly in layers]
    if variant.norm is not None:
        layers = [dataclasses.replace(ly, norm=variant.norm) if ly.kind == "conv" else ly for ly in layers]
    model = dataclasses.replace(cfg.model, layers=layers, modules=modules)
    return dataclasses.replace(cfg, name=_slug(variant.name), model=model)


def _train_variant(cfg: Config, run_dir: Path, corpus: AudioCorpus) -> None:
    RunDir(run_dir).train_or_reuse(cfg, lambda: batches_from_corpus(cfg, corpus), progress=False)


def run_ablation(
    corpus: tuple[AudioCorpus, AudioCorpus],
    out_dir: str | Path = "runs/ablation",
    *,
    variants: Sequence[Variant] = ABLATION,
    seed: int = 0,
    steps: int | None = None,
    pools: Sequence[str] = ("mean", "meanstd"),
    jobs: int = 2,
    probe_on: Literal["validation", "test"] = "validation",
    progress: bool = True,
) -> str:
    """Train (``jobs`` processes) and probe every variant; write and return the Markdown table.

    Every variant trains on all training words. With ``probe_on="validation"`` (the default, for choosing
    settings) the probe is fitted on four fifths of the training words and scored on the other fifth
    (:func:`~vgim.evaluate.evaluation.validation_split`), so the test words play no part; ``"test"``
    fits on the training words and scores on the test words."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if probe_on not in ("validation", "test"):
        raise ValueError(f"probe_on must be 'validation' or 'test', got {probe_on!r}")
    split = validation_split(corpus[0]) if probe_on == "validation" else EvaluationSplit(*corpus)
    train_words = corpus[0]
    t0 = time.perf_counter()
    runs = [(v, variant_config(v, seed, steps), out / _slug(v.name)) for v in variants]
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=mp.get_context(method)) as pool:
        futures = {pool.submit(_train_variant, cfg, run_dir, train_words): v.name for v, cfg, run_dir in runs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="training variants", disable=not progress):
            future.result()
            log.info("trained %s", futures[future])
    train_seconds = time.perf_counter() - t0
    sets: dict[str, FeatureSet] = dict(mfcc_feature_set(split))
    for v, _, run_dir in runs:
        model = vgim.load(run_dir)
        sets |= model_feature_sets(model, split, v.name)
        if v.random_baseline:
            sets |= model_feature_sets(random_init_model(model, seed), split, f"{v.name}, random init")
    labels = [u.labels for u in split.train.utterances], [u.segments for u in split.train.utterances]
    test = [u.labels for u in split.test.utterances], [u.segments for u in split.test.utterances]
    results: dict[str, list[ProbeResult]] = {}
    where = (
        f"fitted on the syllables of {len(split.train)} of the {len(train_words)} training words and scored on "
        f"those of the other {len(split.test)} (validation; the test words are not used)"
        if probe_on == "validation"
        else f"fitted on the training words' syllables and scored on the {len(split.test)} test words' syllables"
    )
    parts = [
        f"Ablation on the thesis corpus: each variant trained once (seed {seed}) on the {len(train_words)} "
        f"training words; linear probe per syllable, {where}. Accuracy (%). Produced by "
        f"`vgim experiment ablation`.\n"
    ]
    for mode in pools:
        results[mode] = run_probes(sets, labels[0], labels[1], test[0], test[1], THESIS_TASKS, seed=seed, pool=mode)
        parts.append(f"\nPooling `{mode}`:\n\n" + results_table(results[mode], "accuracy") + "\n")
    parts.append("\nThe full settings of each variant:\n")
    for v, cfg, _ in runs:
        detail = ", ".join(
            [f"preset `{v.preset}`", *(f"`{o}`" for o in v.overrides)]
            + ([f"width {v.width}"] if v.width else [])
            + ([f"norm `{v.norm}`"] if v.norm else [])
            + ([f"modules {list(v.modules)}"] if v.modules else [])
        )
        parts.append(f"- **{v.name}**: {detail}; {cfg.train.steps} steps")
    text = "\n".join(parts) + "\n"
    (out / "ablation.md").write_text(text)
    (out / "ablation.json").write_text(
        json.dumps(
            {
                "results": {mode: results_to_json(r) for mode, r in results.items()},
                "variants": [dataclasses.asdict(v) for v in variants],
                "seconds": {"train": train_seconds, "total": time.perf_counter() - t0},
            },
            indent=2,
        )
        + "\n"
    )
    return text
