"""The handlers of ``vgim experiment {thesis,ablation,librispeech}`` (and the thesis corpus they and
``vgim decode --corpus thesis`` open), whose parser lives in :mod:`vgim.cli`, and ``vgim package`` (its
parser and handler, :func:`add_pretrained_parsers`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vgim.config import ConfigError

if TYPE_CHECKING:
    from vgim.data.corpus import AudioCorpus

__all__ = [
    "ablation_command",
    "add_pretrained_parsers",
    "add_probe_protocol_options",
    "librispeech_command",
    "named_presets",
    "package_command",
    "pretrained_command",
    "thesis_command",
    "thesis_corpus",
]


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


def add_probe_protocol_options(ls: argparse.ArgumentParser) -> None:
    """The probe protocol options of ``vgim experiment librispeech`` (each ``None``: the protocol's)."""
    from vgim.evaluate.frame_probe import PAIRINGS
    from vgim.experiments.librispeech.protocol import PROTOCOLS, SPEAKER_POOLS

    ls.add_argument(
        "--protocol",
        default="gim",
        choices=list(PROTOCOLS),
        help="probe protocol: gim (default; the GIM paper's code: all frames, one utterance per Adam step, lr 1e-4, "
        "20 epochs; speakers per 20480-sample window, Adam lr 1e-3, 50 epochs) or sampled (the earlier choices: "
        "250k/100k sampled frames, batch 1024, lr 1e-3, 10 epochs, lbfgs speakers per utterance); the options "
        "below change single settings (see docs/real-speech.md)",
    )
    ls.add_argument(
        "--pairing",
        default=None,
        choices=list(PAIRINGS),
        help="frames to labels: gim = the last len(labels) outputs (right-aligned); centre = by frame centres "
        "(default: the protocol's)",
    )
    ls.add_argument("--align", default=None, choices=["mean", "nearest"], help="module frames per label frame")
    ls.add_argument("--probe-epochs", type=int, default=None, help="epochs of the frame-level phone probe")
    ls.add_argument("--probe-lr", type=float, default=None, help="Adam learning rate of the phone probe")
    ls.add_argument("--probe-batch-size", type=int, default=None, help="frames per step (0: one utterance per step)")
    ls.add_argument("--max-train-frames", type=int, default=None, help="phone probe training frames (0: all)")
    ls.add_argument("--max-test-frames", type=int, default=None, help="phone probe test frames (0: all)")
    ls.add_argument("--speaker-window", type=int, default=None, help="samples per speaker example (0: utterance)")
    ls.add_argument("--speaker-pool", default=None, choices=list(SPEAKER_POOLS), help="vector per speaker example")
    ls.add_argument("--speaker-epochs", type=int, default=None, help="epochs of the speaker probe (Adam)")
    ls.add_argument("--speaker-lr", type=float, default=None, help="Adam learning rate of the speaker probe")
    ls.add_argument("--probe-memory-gb", type=float, default=16.0, help="memory for one model's phone frames")


def add_librispeech_parser(studies: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """``vgim experiment librispeech``: the papers' phone and speaker probes (:func:`run_librispeech_experiment`)."""
    ls = studies.add_parser(
        "librispeech",
        parents=[common],
        help="the CPC/GIM papers' phone and speaker probes on LibriSpeech train-clean-100",
    )
    ls.add_argument("--root", default="", help="folder holding train-clean-100/ (or LibriSpeech/train-clean-100/)")
    ls.add_argument("--alignments", default="", help="the CPC converted_aligned_phones.txt")
    ls.add_argument("--train-split", default="", help="the CPC train_split.txt")
    ls.add_argument("--test-split", default="", help="the CPC test_split.txt")
    ls.add_argument("--subset", default="train-clean-100")
    ls.add_argument("--presets", default="cpc,gim,vgim", help="comma-separated presets to train")
    ls.add_argument("--override", action="append", help="section.key=value for every preset (repeatable)")
    ls.add_argument("--max-utterances", type=int, default=None, help="per split file, evenly spread")
    ls.add_argument(
        "--extra-audio",
        default=None,
        help="unlabelled audio the presets also train on (a manifest's train rows, or a folder); never probed",
    )
    ls.add_argument("--seed", type=int, default=0, help="training seed of every preset and baseline, and of the probes")
    add_probe_protocol_options(ls)
    ls.add_argument("--device", default="auto", help="feature extraction and supervised baselines")
    ls.set_defaults(func=librispeech_command)


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
        extra_audio=args.extra_audio,
        protocol=args.protocol,
        pairing=args.pairing,
        align=args.align,
        probe_epochs=args.probe_epochs,
        probe_lr=args.probe_lr,
        probe_batch_size=args.probe_batch_size,
        max_train_frames=args.max_train_frames,
        max_test_frames=args.max_test_frames,
        speaker_window=args.speaker_window,
        speaker_pool=args.speaker_pool,
        speaker_epochs=args.speaker_epochs,
        speaker_lr=args.speaker_lr,
        probe_memory_gb=args.probe_memory_gb,
        seed=args.seed,
        device=args.device,
        quick=args.quick,
        progress=not args.quiet,
    )
    print(result.table)
    print(f"outputs: {result.results_md}, {result.results_json} ({result.seconds['total']:.0f} s)")
    return 0


def package_command(args: argparse.Namespace) -> int:
    from vgim.packaged import package_run

    result = package_run(
        args.run,
        args.name,
        out=args.out,
        data=args.data,
        data_licence=args.data_licence,
        licence=args.licence,
        licence_file=args.licence_file,
        command=args.command_line,
        probe_results=args.probe_results,
        probe_data=args.probe_data,
        force=args.force,
    )
    print(f"packaged {args.run} as pretrained:{result.name} in {result.path}")
    for name, size in result.sizes.items():
        print(f"  {name}: {size:,} bytes")
    return 0


def pretrained_command(args: argparse.Namespace) -> int:
    from vgim.packaged import pretrained_names, pretrained_path, pretrained_roots

    names = pretrained_names()
    for name in names:
        print(f"pretrained:{name}  {pretrained_path(name)}")
    if not names:
        print("no pretrained encoder found in " + ", ".join(str(r) for r in pretrained_roots()))
    return 0


def add_pretrained_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``vgim package RUN --name NAME ...`` (a finished run as a pretrained encoder) and ``vgim pretrained``
    (list them); see :mod:`vgim.packaged`."""
    pk = sub.add_parser("package", help="turn a finished run into a pretrained encoder, loadable as pretrained:NAME")
    pk.add_argument("run", help="a finished run directory (its export/ is packaged)")
    pk.add_argument("--name", required=True, help="the encoder's name (lower-case letters, digits, . _ -)")
    pk.add_argument("--out", default=None, help="folder to write NAME/ into (default: the package's vgim/pretrained)")
    pk.add_argument("--data-licence", required=True, help="the licence of the training data, e.g. 'CC BY 4.0'")
    pk.add_argument("--data", default="", help="what the training data is (default: the config's data.root)")
    pk.add_argument("--licence", default="", help="the weights' licence (default: the training data's terms)")
    pk.add_argument("--licence-file", default=None, help="a licence text to ship as NAME/LICENSE")
    pk.add_argument(
        "--command",
        dest="command_line",
        default="",
        help="the command that trained the run (default: written from its config: its preset plus overrides)",
    )
    pk.add_argument("--probe-results", default=None, help="a `vgim probe ... --out results.json` file for the table")
    pk.add_argument("--probe-data", default="", help="what the probes were trained and scored on")
    pk.add_argument("--force", action="store_true", help="replace an existing NAME/ folder")
    pk.set_defaults(func=package_command)
    ls = sub.add_parser("pretrained", help="list the pretrained encoders (vgim.load('pretrained:NAME'))")
    ls.set_defaults(func=pretrained_command)
