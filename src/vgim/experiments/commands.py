"""The handlers of ``vgim experiment {thesis,ablation,librispeech}`` (and the thesis corpus they and
``vgim decode --corpus thesis`` open); the parser lives in :mod:`vgim.cli`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vgim.config import ConfigError

if TYPE_CHECKING:
    from vgim.data.corpus import AudioCorpus

__all__ = ["ablation_command", "librispeech_command", "named_presets", "thesis_command", "thesis_corpus"]


def named_presets(text: str) -> dict[str, str]:
    """``"A=preset-a,B=preset-b"`` (or bare preset names) as ``{display name: preset}``."""
    out: dict[str, str] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, sep, preset = item.partition("=")
        out[name.strip() if sep else item] = (preset if sep else item).strip()
    if not out:
        raise ConfigError(f"--models {text!r}: expected NAME=PRESET pairs separated by commas")
    return out


def thesis_corpus(args: argparse.Namespace) -> AudioCorpus:
    """The segmented thesis corpus from ``--corpus`` or found beside the checkout."""
    from vgim.data.thesis import find_thesis_corpus, load_thesis_corpus

    root = args.corpus or find_thesis_corpus()
    if root is None:
        raise FileNotFoundError(
            "thesis corpus not found: pass --corpus DIR (the folder holding train/ and test/) or set VGIM_THESIS_CORPUS"
        )
    corpus = load_thesis_corpus(root, progress=not args.quiet)
    return corpus


def thesis_command(args: argparse.Namespace) -> int:
    from vgim.evaluate.thesis_probe import ThesisProbeConfig
    from vgim.experiments.thesis import run_thesis_experiment

    corpus = thesis_corpus(args)
    seeds = [0] if args.quick else list(range(args.seeds))
    steps = args.steps if args.steps is not None else (100 if args.quick else None)
    models: dict[str, str | tuple[str, list[str]]] = (
        dict(named_presets(args.models)) if args.models else {"GIM": args.gim, "V-GIM": args.vgim}
    )
    result = run_thesis_experiment(
        (corpus.subset("train"), corpus.subset("test")),
        args.out or "runs/thesis",
        seeds=seeds,
        models=models,
        steps=steps,
        supervised_steps=100 if args.quick else 1500,
        baselines=not args.no_baselines,
        pool=args.pool,
        jobs=args.jobs,
        protocol=args.protocol,
        thesis_probe=ThesisProbeConfig(pad_samples=args.pad_samples, standardise=args.standardise),
        progress=not args.quiet,
    )
    print(result.table)
    print(f"outputs: {result.out_dir}/results.md, {result.out_dir}/results.json ({result.seconds['total']:.0f} s)")
    return 0


def ablation_command(args: argparse.Namespace) -> int:
    from vgim.experiments.ablation import run_ablation

    corpus = thesis_corpus(args)
    out = args.out or "runs/ablation"
    text = run_ablation(
        (corpus.subset("train"), corpus.subset("test")),
        out,
        steps=args.steps,
        jobs=args.jobs,
        probe_on=args.probe_on,
        progress=not args.quiet,
    )
    print(text)
    print(f"outputs: {out}/ablation.md, {out}/ablation.json")
    return 0


def librispeech_command(args: argparse.Namespace) -> int:
    from vgim.experiments.librispeech import run_librispeech_experiment

    flags = {"--root": args.root, "--alignments": args.alignments}
    flags |= {"--train-split": args.train_split, "--test-split": args.test_split}
    missing = [flag for flag, value in flags.items() if not value]
    if missing:
        raise ValueError(f"`vgim experiment librispeech` needs {', '.join(missing)} (see --help)")
    result = run_librispeech_experiment(
        args.root,
        alignments=args.alignments,
        train_split=args.train_split,
        test_split=args.test_split,
        subset=args.subset,
        presets=[p.strip() for p in args.presets.split(",") if p.strip()],
        out=args.out or "runs/librispeech",
        steps=args.steps,
        overrides=args.override or [],
        max_utterances=args.max_utterances,
        probe_epochs=args.probe_epochs,
        speaker_pool=args.speaker_pool,
        device=args.device,
        quick=args.quick,
        progress=not args.quiet,
    )
    print(result.table)
    print(f"outputs: {result.results_md}, {result.results_json} ({result.seconds['total']:.0f} s)")
    return 0
