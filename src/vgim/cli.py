"""``vgim <command>``: a thin layer over the library; every command is a function in ``vgim``."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import sys
from pathlib import Path

from vgim.config import ConfigError
from vgim.evaluate.pooling import POOL_MODES
from vgim.evaluate.thesis_probe import THESIS_PAD_SAMPLES
from vgim.experiments.commands import (
    ablation_command,
    add_librispeech_parser,
    add_pretrained_parsers,
    named_presets,
    thesis_command,
)

log = logging.getLogger("vgim")

#: The preset ``vgim train`` trains without --preset or --config.
DEFAULT_PRESET = "vgim-small"


def _train(args: argparse.Namespace) -> int:
    from vgim.config import load_config, resume_config
    from vgim.train.loop import CHECKPOINT, load_checkpoint, train

    out = Path(args.out)
    # Under torchrun every rank runs this command; rank 0 alone prints, as it alone writes the run.
    main_rank = os.environ.get("RANK", "0") == "0"
    if not main_rank:
        logging.getLogger("vgim").setLevel(logging.WARNING)
    start = 0
    if args.resume:
        if not (out / CHECKPOINT).exists():
            raise FileNotFoundError(f"--resume: {out} holds no checkpoint ({CHECKPOINT})")
        state = load_checkpoint(out / CHECKPOINT)
        cfg = resume_config(state["config"], args.overrides)  # the run's own config, as train() will use it
        for flag, value in (("--config", args.config), ("--preset", args.preset)):
            if value and load_config(value).name != cfg.name:
                raise ConfigError(
                    f"--resume continues the run in {out}, trained with the config {cfg.name!r}; {flag} {value} "
                    "names another (drop it, or start a new run with another --out)"
                )
        start = int(state["step"])
        log.info("resuming from step %d", start)
    else:
        cfg = load_config(args.config or args.preset or DEFAULT_PRESET, args.overrides)
    if main_rank:
        print(cfg.to_json())
    overrides = args.overrides if args.resume else None
    result = train(cfg, out, resume=args.resume, progress=not args.quiet, overrides=overrides)
    if main_rank:
        span = f" (from step {start} to step {result.step})" if start else ""
        print(f"trained {result.step - start} steps{span} in {result.seconds:.0f} s; run directory: {out}")
        for m, scalars in sorted(result.final.items()):
            print(f"  module {m + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in scalars.items()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vgim.demo import run_demo

    result = run_demo(
        args.out,
        steps=args.steps,
        seed=args.seed,
        progress=not args.quiet,
        report=not args.no_report,
        report_decoder_steps=args.report_steps,
        models=named_presets(args.models) if args.models else None,
    )
    print()
    print(result.table)
    print()
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
    print(f"outputs: {result.out_dir}/results.md, {result.out_dir}/results.json, run directories in {result.out_dir}/")
    for name, index in result.reports.items():
        print(f"report ({name}): {index}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    import json

    import vgim
    from vgim.config import DataConfig
    from vgim.data.source import open_corpus
    from vgim.evaluate.evaluation import EvaluationSplit, evaluate_models, label_tasks
    from vgim.evaluate.tables import results_table, results_to_json

    data = DataConfig(root=args.data, manifest=args.manifest, label_pattern=args.label_pattern)
    corpus = open_corpus(data, progress=not args.quiet)
    split = EvaluationSplit(corpus.subset(args.train_split), corpus.subset(args.test_split))
    names = [n.strip() for text in args.task or [] for n in text.split(",") if n.strip()]
    tasks, notes = label_tasks(split, names)
    for note in notes:
        print(note, file=sys.stderr)
    if not tasks:
        raise ValueError(
            "no label of this corpus can be probed (see above); labels come from manifest columns or --label-pattern"
        )
    models = {Path(run).name: vgim.load(run, args.device) for run in args.runs}
    results = evaluate_models(models, split, tasks=tasks, baselines=not args.no_baselines, pool=args.pool)
    table = results_table(results, "both")
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps(results_to_json(results), indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from vgim.embed import embed_files

    out = embed_files(args.run, args.files, args.out, device=args.device, chunk_frames=args.chunk_frames)
    print(f"wrote {out.path}: {out.n_files} files x {out.n_modules} modules; skipped {len(out.skipped)}")
    for path, reason in out.skipped:
        print(f"  skipped {path}: {reason}")
    return 0 if out.n_files else 1


def _bench(args: argparse.Namespace) -> int:
    from vgim.bench import format_bench, run_bench

    print(format_bench(run_bench(steps=args.steps, rounds=args.rounds, device=args.device, threads=args.threads)))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from vgim.data.synthetic import synthesize_corpus

    manifest = synthesize_corpus(args.out, n_speakers=args.speakers, seed=args.seed, progress=not args.quiet)
    print(f"corpus manifest: {manifest}")
    return 0


def _segment(args: argparse.Namespace) -> int:
    from vgim.data.segment import segment_corpus

    report = segment_corpus(args.corpus, args.out, figures=args.figures, progress=not args.quiet)
    print(report.describe())
    print(f"syllable files, cuts.csv and manifest.csv in {args.out}")
    return 0


def _data_prompts(args: argparse.Namespace) -> int:
    from vgim.data.prompts import ALIGNMENT_FILE, MANIFEST_FILE, build_prompts_corpus

    languages = [lang for lang in args.languages.split(",") if lang.strip()]
    result = build_prompts_corpus(
        args.out,
        languages=languages,
        limit=args.limit,
        test_fraction=args.test_fraction,
        seed=args.seed,
        align=not args.no_align,
        progress=not args.quiet,
    )
    print(result.describe())
    out = result.out_dir
    print(f"manifest: {out / MANIFEST_FILE}; summary: {out / 'summary.json'}")
    if "alignment" in result.summary:
        print(
            f"LibriSpeech recipe: vgim experiment librispeech --root {out} --subset prompts --alignments "
            f"{out / ALIGNMENT_FILE} --train-split {out / 'train_split.txt'} --test-split {out / 'test_split.txt'}"
        )
    return 0


def _decode(args: argparse.Namespace) -> int:
    from vgim.interpret.decoders import train_decoders
    from vgim.interpret.intelligibility import Intelligibility

    corpus = None
    if args.corpus == "thesis":
        from vgim.experiments.commands import thesis_corpus

        corpus = thesis_corpus(argparse.Namespace(corpus=None, quiet=args.quiet))
    elif args.corpus is not None:
        import vgim
        from vgim.data.source import open_corpus

        data = vgim.load(args.run).config.data  # type: ignore[union-attr]
        corpus = open_corpus(dataclasses.replace(data, root=args.corpus), progress=not args.quiet)
    result = train_decoders(
        args.run,
        corpus=corpus,
        kind=args.kind,
        steps=args.steps,
        batch_size=args.batch_size,
        out_dir=args.out,
        progress=not args.quiet,
    )
    for m, metrics in sorted(result.metrics.items()):
        print(f"module {m + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    if result.intelligibility is not None:
        table = Intelligibility.from_dict(result.intelligibility)
        print(
            f"\nIntelligibility: an MFCC linear probe fitted on the original training audio ({table.n_train} files), "
            f"scored on {table.n_test} held-out files as decoded (and on the references above them):\n"
        )
        print(table.markdown())
    print(f"\ndecoders, metrics.json and examples in {result.out_dir}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from vgim.report import build_report

    index = build_report(
        args.run,
        args.out,
        decoder_steps=args.decoder_steps,
        progress=not args.quiet,
        traversal_origin=args.traversal_origin,
    )
    print(f"report: {index}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from vgim.config import available_presets, load_config
    from vgim.model.stack import frame_infos

    for name in available_presets():
        cfg = load_config(name)
        hop = frame_infos(cfg.model)[-1].hop
        kind = "V-GIM" if cfg.model.variational else ("CPC" if len(cfg.model.modules) == 1 else "GIM")
        print(
            f"{name:14s} {kind:6s} modules={cfg.model.modules} hop={hop} beta={cfg.objective.beta} "
            f"mode={cfg.train.mode}"
        )
    return 0


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vgim", description="CPC, Greedy InfoMax and Variational Greedy InfoMax.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset or config file into a run directory")
    t.add_argument("--preset", default="", help=f"preset name (see `vgim presets`; default {DEFAULT_PRESET})")
    t.add_argument("--config", default="", help="a TOML config file (overrides --preset)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.steps=200 objective.beta=0.01")
    t.set_defaults(func=_train)

    d = sub.add_parser("demo", help="the main job: words in noise, train V-GIM and GIM, probe, print a table")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--steps", type=int, default=None, help="training steps per model (default: the presets')")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")
    d.add_argument("--no-report", action="store_true", help="skip the report pages")
    d.add_argument("--report-steps", type=_positive_int, default=200, help="decoder training steps for the reports")
    d.add_argument(
        "--models",
        default=None,
        help="comma-separated NAME=PRESET pairs to train and probe instead of V-GIM and GIM, on the corpus the "
        "first preset names (the small presets: the clean one), e.g. "
        "'V-GIM=vgim-small,GIM=gim-small,VQ-GIM=vq-gim-small,APC-GIM=apc-gim-small,VAE=vae-small'",
    )
    d.set_defaults(func=_demo)

    pr = sub.add_parser("probe", help="linear probes of every module of one or more runs, with baselines")
    pr.add_argument("runs", nargs="+", help="run directories, exports or pretrained:NAME")
    pr.add_argument("--data", default="synthetic", help="'synthetic' or a folder of audio")
    pr.add_argument("--manifest", default="", help="CSV manifest with path, labels, split, segments")
    pr.add_argument("--label-pattern", default="", help="regex with named groups matched on file stems")
    pr.add_argument("--train-split", default="train")
    pr.add_argument("--test-split", default="test")
    pr.add_argument("--pool", default="mean", choices=list(POOL_MODES))
    pr.add_argument("--no-baselines", action="store_true")
    pr.add_argument(
        "--task",
        action="append",
        help="probe only this label (a task name or a manifest column; repeatable or comma-separated; "
        "default: every label of the corpus)",
    )
    pr.add_argument("--device", default="cpu")
    pr.add_argument("--out", default="", help="write the results as JSON here")
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(func=_probe)

    e = sub.add_parser("embed", help="extract every module's features of audio files into an .npz")
    e.add_argument("run", help="run directory, export folder, checkpoint or pretrained:NAME")
    e.add_argument("files", nargs="+", help="audio files (any length, any sample rate)")
    e.add_argument("--out", required=True, help="output .npz")
    e.add_argument("--device", default="cpu")
    e.add_argument("--chunk-frames", type=int, default=2000, help="frames per chunk of the convolutions")
    e.set_defaults(func=_embed)

    b = sub.add_parser("bench", help="training-step time, peak memory and extraction speed (paper architecture)")
    b.add_argument("--steps", type=int, default=3, help="timed steps per case and round (after 1 warm-up step)")
    b.add_argument(
        "--rounds", type=int, default=3, help="time every case this many times, interleaved, in fresh processes"
    )
    b.add_argument("--device", default="auto")
    b.add_argument("--threads", type=int, default=0)
    b.set_defaults(func=_bench)

    s = sub.add_parser("synth", help="synthesise the embedded espeak-ng corpus")
    s.add_argument("--out", default=None, help="folder (default: the cache)")
    s.add_argument("--speakers", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_synth)

    sg = sub.add_parser("segment", help="split three-syllable words into syllables (envelope + Otsu threshold)")
    sg.add_argument("corpus", help="folder of words (e.g. the thesis corpus with train/ and test/)")
    sg.add_argument("--out", required=True, help="output folder for syllable files, cuts.csv, manifest.csv")
    sg.add_argument("--figures", type=int, default=0, help="draw a figure for the first N files")
    sg.add_argument("--quiet", action="store_true")
    sg.set_defaults(func=_segment)

    ex = sub.add_parser("experiment", help="reproducible studies: thesis, ablation, librispeech")
    studies = ex.add_subparsers(dest="study", required=True, metavar="{thesis,ablation,librispeech}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default=None, help="default: runs/<study>")
    common.add_argument("--steps", type=int, default=None, help="training steps per model (default: the presets')")
    common.add_argument("--quick", action="store_true", help="a smoke test: 100 steps (thesis: one seed)")
    common.add_argument("--quiet", action="store_true")
    corpus = argparse.ArgumentParser(add_help=False)
    corpus.add_argument("--corpus", default="", help="thesis corpus folder (default: found beside the checkout)")
    corpus.add_argument("--jobs", type=int, default=2, help="worker processes training the runs (1: in this process)")

    th = studies.add_parser(
        "thesis", parents=[common, corpus], help="GIM and V-GIM (or any presets) on the thesis corpus, per syllable"
    )
    th.add_argument("--seeds", type=int, default=1, help="seeds (the thesis: 5, about 4 h on 2 cores)")
    th.add_argument("--gim", default="gim-thesis", help="preset for the GIM row")
    th.add_argument("--vgim", default="vgim-thesis", help="preset for the V-GIM row")
    th.add_argument(
        "--models",
        default=None,
        help="comma-separated NAME=PRESET rows instead of --gim/--vgim, e.g. 'GIM=gim-thesis-improved,"
        "VQ-GIM=vq-gim-thesis-improved,APC-GIM=apc-gim-thesis-improved,VAE=vae-thesis-improved'",
    )
    th.add_argument("--pool", default="mean", choices=list(POOL_MODES), help="the vgim protocol's pooling")
    th.add_argument(
        "--protocol",
        default="both",
        choices=["vgim", "thesis", "both"],
        help="vgim: whole word, pooled per syllable, logistic regression; thesis: every syllable padded and "
        "encoded alone, its map flattened, a linear layer (100 epochs), label subsets, t-SNE; both (default)",
    )
    th.add_argument(
        "--pad-samples",
        type=int,
        default=THESIS_PAD_SAMPLES,
        help="thesis protocol: the fixed syllable length (16 kHz samples; 0: the corpus's longest syllable)",
    )
    th.add_argument(
        "--standardise", action="store_true", help="thesis protocol: standardise the features (the thesis did not)"
    )
    th.add_argument(
        "--no-baselines", action="store_true", help="skip the random-init and supervised baselines (MFCC stays)"
    )
    th.set_defaults(func=thesis_command)

    ab = studies.add_parser("ablation", parents=[common, corpus], help="what improves GIM on the thesis corpus")
    ab.add_argument(
        "--probe-on",
        default="validation",
        choices=["validation", "test"],
        help="score the probes on a fifth of the training words (default; for choosing settings) or on the test words",
    )
    ab.set_defaults(func=ablation_command)

    add_librispeech_parser(studies, common)

    da = sub.add_parser("data", help="build corpora from installed sources: prompts")
    sources = da.add_subparsers(dest="source", required=True, metavar="{prompts}")
    pm = sources.add_parser(
        "prompts",
        help="Debian's Asterisk voice prompts (5 voices) as a corpus; English with 10 ms phone alignments",
    )
    pm.add_argument("--out", required=True, help="output folder (audio, manifest.csv, alignments, summary.json)")
    pm.add_argument("--languages", default="en,es,fr,it,ru", help="comma-separated, from en,es,fr,it,ru")
    pm.add_argument("--limit", type=_positive_int, default=None, help="at most N prompts per language (first by name)")
    pm.add_argument("--test-fraction", type=float, default=0.2, help="fraction of each language's prompts in test")
    pm.add_argument("--seed", type=int, default=0, help="seed of the split")
    pm.add_argument("--no-align", action="store_true", help="skip the English phone alignment")
    pm.add_argument("--quiet", action="store_true")
    pm.set_defaults(func=_data_prompts)

    dc = sub.add_parser("decode", help="train a decoder per module of a run and measure reconstructions")
    dc.add_argument("run")
    dc.add_argument("--steps", type=_positive_int, default=2000, help="decoder training steps (>= 1)")
    dc.add_argument("--out", default=None, help="default: RUN/decoders")
    dc.add_argument(
        "--kind",
        choices=["spectrogram", "waveform", "thesis"],
        default="spectrogram",
        help="spectrogram + Griffin-Lim (default), waveform (mirrored transposed convs), "
        "thesis (mirrored, log10-mel MSE); docs/decoders.md compares them",
    )
    dc.add_argument("--batch-size", type=_positive_int, default=8)
    dc.add_argument(
        "--corpus",
        default=None,
        help="audio folder to train and score on, or 'thesis' for the segmented thesis corpus "
        "(found beside the checkout); default: the run's data",
    )
    dc.add_argument("--quiet", action="store_true")
    dc.set_defaults(func=_decode)

    rp = sub.add_parser("report", help="write a self-contained HTML report of a run")
    rp.add_argument("run")
    rp.add_argument("--out", default=None, help="default: RUN/report")
    rp.add_argument("--decoder-steps", type=_positive_int, default=400)
    rp.add_argument(
        "--traversal-origin",
        choices=["latent", "zero"],
        default="latent",
        help="sweep latent dimensions around the example's latent, or from the zero vector (the thesis's way)",
    )
    rp.add_argument("--quiet", action="store_true")
    rp.set_defaults(func=_report)

    sub.add_parser("presets", help="list the bundled presets").set_defaults(func=_presets)
    add_pretrained_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError, FloatingPointError) as err:
        print(f"vgim {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system refused: a read-only folder, a full disk, a path that is a file
        print(f"vgim {args.command}: error: {_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vgim {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130


def _os_error(err: OSError) -> str:
    """An OSError as one line naming the file, with what to do for a folder that cannot be written."""
    where = f"{err.filename}: " if err.filename else ""
    text = f"{where}{err.strerror or err}"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        text += " (the folder cannot be written: choose another output folder or change its permissions)"
    return text


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command leaves to resume (training runs only)."""
    if args.command != "train":
        return ""
    from vgim.train.loop import CHECKPOINT

    if (Path(args.out) / CHECKPOINT).exists():
        return f"; continue it with: vgim train --out {args.out} --resume"
    return " before the first checkpoint: there is nothing to resume; start the run again"


if __name__ == "__main__":
    sys.exit(main())
