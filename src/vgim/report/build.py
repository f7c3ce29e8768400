"""``vgim report RUN``: one self-contained HTML page about a trained run.

:func:`build_report` writes ``index.html`` with its PNG figures and WAV files beside it (relative links only;
no network access, no external CSS or JavaScript) and ``report.json`` with every number the page shows:

- the run's configuration;
- training curves and InfoNCE accuracy per prediction step ``k``;
- linear probes of every module with the MFCC and random-init baselines;
- t-SNE maps of every module's pooled representation;
- per-module decoders (trained for the report, or the run's own finished ``RUN/decoders``) with audio
  players for the original and every module's reconstruction;
- latent traversals of every module (prior standard deviations for a variational module, the dimension's
  standard deviation over time for a deterministic one) and an interpolation between two utterances of
  different speakers, with audio;
- activations over time and the first-layer kernels' frequency responses;
- diagnostics: per-dimension KL and active dimensions (variational modules only) and the MIG per module.

Sections that need something the run or the corpus lacks (labels, syllable segments, a variational
module, ``metrics.csv``) are replaced by a note saying why. A section that fails unexpectedly shows the
error on the page and in ``report.json["errors"]`` instead of aborting the whole report.

A small inline script checks, once the page has loaded, that every image and audio file loaded, and
writes the result into the ``#page-check`` element (text for the reader, JSON in its ``data-status``
attribute for automated checks).
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from vgim.data.corpus import AudioCorpus, Utterance
from vgim.model.stack import Stack

__all__ = ["REPORT_FILE", "REPORT_JSON", "build_report", "markdown_table_to_html"]

log = logging.getLogger("vgim")

#: The page written by :func:`build_report`.
REPORT_FILE = "index.html"
#: The numbers shown on the page.
REPORT_JSON = "report.json"

#: Examples longer than this are cropped (traversals decode every latent dimension of the example).
MAX_EXAMPLE_SECONDS = 4.0
#: Points of each latent traversal (offsets -2.68 .. +2.68).
TRAVERSAL_STEPS = 7
#: Dimensions per module drawn in the traversal figure / given an audio sweep.
TRAVERSAL_PLOT_DIMS = 6
TRAVERSAL_AUDIO_DIMS = 3
#: Points of the interpolation between two utterances.
INTERPOLATION_STEPS = 5
#: Silence between the steps of a traversal sweep WAV, in seconds.
SWEEP_GAP_SECONDS = 0.2
#: KL threshold (nats) below which a latent dimension counts as collapsed.
KL_THRESHOLD = 0.01


# ---------------------------------------------------------------------------------------------------------
# HTML helpers


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def markdown_table_to_html(markdown: str, caption: str = "") -> str:
    """Render a Markdown pipe table (as written by :func:`vgim.evaluate.probes.results_table`) as HTML.

    Parameters
    ----------
    markdown
        The table: a header line, an alignment line (``---``, ``---:``, ``:---:``) and body lines, each
        starting with ``|``. Other lines are ignored.
    caption
        Optional ``<caption>`` text.

    Returns
    -------
    str
        A ``<table>`` element; cell text is HTML-escaped, right-aligned columns get ``class="num"``.

    Raises
    ------
    ValueError
        If there is no header and alignment line.
    """
    lines = [ln.strip() for ln in markdown.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        raise ValueError("not a Markdown table: need a header line and an alignment line")

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    header = cells(lines[0])
    aligns = []
    for spec in cells(lines[1]):
        if spec.startswith(":") and spec.endswith(":"):
            aligns.append("center")
        elif spec.endswith(":"):
            aligns.append("num")
        else:
            aligns.append("")
    aligns += [""] * (len(header) - len(aligns))

    def row(values: list[str], tag: str) -> str:
        out = []
        for i, v in enumerate(values):
            cls = f' class="{aligns[i]}"' if i < len(aligns) and aligns[i] else ""
            out.append(f"<{tag}{cls}>{_esc(v)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{_esc(caption)}</caption>")
    parts.append("<thead>" + row(header, "th") + "</thead><tbody>")
    parts.extend(row(cells(ln), "td") for ln in lines[2:])
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "", numeric_from: int = 1) -> str:
    """HTML table; columns from ``numeric_from`` on are right-aligned; floats are shown as given (format first)."""
    cls = ["" if i < numeric_from else "num" for i in range(len(header))]

    def tr(values: Sequence[object], tag: str) -> str:
        out = []
        for i, v in enumerate(values):
            attr = f' class="{cls[i]}"' if i < len(cls) and cls[i] else ""
            out.append(f"<{tag}{attr}>{_esc(v)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    body = "".join(tr(r, "td") for r in rows)
    return f"<table>{cap}<thead>{tr(header, 'th')}</thead><tbody>{body}</tbody></table>"


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
  color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2em 1.6em 3em; background: #fff; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.3em; margin-top: 2.2em; border-bottom: 2px solid #e3e3e8; padding-bottom: 0.2em; }
h3 { font-size: 1.07em; margin: 1.4em 0 0.4em; }
nav ol { columns: 2; margin: 0.4em 0; }
nav a, a { color: #0a58ca; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e8; background: #fff; }
figcaption { font-size: 0.9em; color: #555; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 0.6em 1.2em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.93em; }
caption { text-align: left; font-size: 0.92em; color: #555; padding-bottom: 0.3em; caption-side: top; }
th, td { border: 1px solid #d8d8de; padding: 0.25em 0.6em; text-align: left; vertical-align: middle; }
th { background: #f1f1f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.center, th.center { text-align: center; }
.players { display: flex; flex-wrap: wrap; gap: 0.5em 1.2em; margin: 0.4em 0 1em; }
.player { display: flex; flex-direction: column; font-size: 0.88em; color: #333; }
.player audio { width: 260px; height: 36px; }
td audio { width: 240px; height: 34px; vertical-align: middle; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.45em 0.8em; margin: 0.6em 0; }
.error { background: #fdecea; border-left: 4px solid #d93025; padding: 0.45em 0.8em; margin: 0.6em 0; }
.meta td:first-child { font-weight: 600; white-space: nowrap; }
pre { background: #f5f5f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
details summary { cursor: pointer; }
.small { font-size: 0.88em; color: #555; }
#page-check { font-size: 0.88em; color: #555; margin-top: 2em; }
"""

# Runs before the body is parsed: records script errors and failed image/audio loads (error events of
# elements do not bubble, hence the capturing listener), then, once every <audio> has its metadata (or
# after ~10 s), writes a summary into #page-check.
_CHECK_SCRIPT = """
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      errors.push('failed to load ' + t.tagName.toLowerCase() + ' ' + (t.currentSrc || t.getAttribute('src') || ''));
    } else {
      errors.push('script error: ' + (e.message || String(e)));
    }
  }, true);
  window.addEventListener('unhandledrejection', function (e) { errors.push('unhandled rejection: ' + e.reason); });
  function finish(tries) {
    var imgs = Array.prototype.slice.call(document.images);
    var auds = Array.prototype.slice.call(document.querySelectorAll('audio'));
    var loading = imgs.filter(function (i) { return !i.complete; }).length +
      auds.filter(function (a) { return a.readyState < 1 && !a.error; }).length;
    if (loading > 0 && tries < 100) { setTimeout(function () { finish(tries + 1); }, 100); return; }
    var badImg = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
    var badAud = auds.filter(function (a) { return a.error || !(a.readyState >= 1 && a.duration > 0); });
    badImg.forEach(function (i) { errors.push('image not shown: ' + i.getAttribute('src')); });
    badAud.forEach(function (a) { errors.push('audio not playable: ' + (a.currentSrc || a.getAttribute('src'))); });
    var status = { done: true, images: imgs.length, images_ok: imgs.length - badImg.length,
      audio: auds.length, audio_ok: auds.length - badAud.length, errors: errors };
    var el = document.getElementById('page-check');
    el.setAttribute('data-status', JSON.stringify(status));
    el.textContent = errors.length === 0
      ? 'Page check: all ' + imgs.length + ' images and ' + auds.length + ' audio files loaded.'
      : 'Page check: ' + errors.length + ' problem(s): ' + errors.join('; ');
  }
  window.addEventListener('load', function () { finish(0); });
})();
"""


# ---------------------------------------------------------------------------------------------------------
# the builder


@dataclass
class _Section:
    anchor: str
    title: str
    body: list[str] = field(default_factory=list)


@dataclass
class _Example:
    """One example utterance (cropped to :data:`MAX_EXAMPLE_SECONDS`)."""

    index: int
    utterance: Utterance
    wave: np.ndarray
    segments: list[tuple[int, int]] | None
    syllables: list[str] | None
    label: str


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None, paths to str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _method(model: Stack) -> str:
    cfg = model.config
    n = model.n_modules
    if model.cfg.variational:
        return "V-GIM" if n > 1 else "variational CPC"
    if cfg is not None and cfg.train.mode == "end_to_end":
        return "CPC"
    return "GIM" if n > 1 else "CPC"


def _describe(u: Utterance, speaker_key: str) -> str:
    parts = []
    if speaker_key in u.labels:
        parts.append(u.labels[speaker_key])
    word = u.labels.get("syllables") or u.labels.get("word")
    parts.append(f"'{word}'" if word else Path(u.path).name)
    return " ".join(parts)


def _split_for_report(corpus: AudioCorpus, seed: int) -> tuple[AudioCorpus, AudioCorpus, str]:
    """(train, test, how): the corpus's train/test splits, or a seeded 80/20 split by utterance."""
    splits = corpus.splits()
    if "train" in splits and "test" in splits:
        return corpus.subset("train"), corpus.subset("test"), "the corpus's own train/test split"
    n = len(corpus)
    if n < 2:
        return corpus, corpus, "a single utterance (train and test are the same)"
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(0.2 * n))
    test_idx, train_idx = sorted(order[:n_test].tolist()), sorted(order[n_test:].tolist())

    def pick(idx: list[int], split: str) -> AudioCorpus:
        utts = [dataclasses.replace(corpus.utterances[i], split=split) for i in idx]
        return AudioCorpus(utts, [corpus.waves[i] for i in idx], corpus.sample_rate, list(corpus.skipped))

    how = f"no train/test split in the corpus: a seeded random 80/20 split by utterance ({n - n_test}/{n_test})"
    return pick(train_idx, "train"), pick(test_idx, "test"), how


def _finished_decoders(run_dir: Path, n_modules: int) -> Path | None:
    """``run_dir/decoders`` when it holds a finished training of a decoder for every module, else None."""
    import torch

    from vgim.interpret.decoders import DECODER_FILE

    folder = run_dir / "decoders"
    ckpt, meta_path = folder / DECODER_FILE, folder / "metrics.json"
    if not (ckpt.is_file() and meta_path.is_file()):
        return None
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        meta = json.loads(meta_path.read_text())
        step, steps = int(state["step"]), int(meta["steps"])
        modules = sorted(int(m) for m in state["decoders"])
    except Exception as err:  # noqa: BLE001 - an unreadable folder is simply not reused
        log.warning("not reusing %s: %s", folder, err)
        return None
    if step != steps or modules != list(range(n_modules)):
        return None
    return folder


class _Builder:
    def __init__(
        self,
        run_dir: Path,
        out: Path,
        corpus: AudioCorpus | None,
        decoder_steps: int,
        n_examples: int,
        progress: bool,
        seed: int,
    ) -> None:
        self.run_dir = run_dir
        self.out = out
        self.corpus_arg = corpus
        self.decoder_steps = decoder_steps
        self.n_examples = n_examples
        self.progress = progress
        self.seed = seed
        self.t0 = time.perf_counter()
        self.sections: list[_Section] = []
        self.data: dict[str, Any] = {}
        self.notes: list[dict[str, str]] = []
        self.errors: list[dict[str, str]] = []
        self.seconds: dict[str, float] = {}
        self.decoders: dict[int, Any] = {}
        self.examples: list[_Example] = []

    # -- output helpers ---------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        log.info("report: %s", message)
        if self.progress:
            print(f"[report {time.perf_counter() - self.t0:6.1f} s] {message}", file=sys.stderr, flush=True)

    def rel(self, path: Path) -> str:
        return quote(Path(path).resolve().relative_to(self.out.resolve()).as_posix())

    def img(self, path: Path, caption: str = "", alt: str = "") -> str:
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        return f'<figure><img src="{self.rel(path)}" alt="{_esc(alt or caption or path.stem)}">{cap}</figure>'

    def audio(self, path: Path, label: str) -> str:
        return (
            f'<div class="player"><span>{_esc(label)}</span>'
            f'<audio controls preload="metadata" src="{self.rel(path)}"></audio></div>'
        )

    def note(self, section: _Section, text: str) -> None:
        self.notes.append({"section": section.anchor, "note": text})
        section.body.append(f'<p class="note">{_esc(text)}</p>')

    def run(self, anchor: str, title: str, fn: Callable[[_Section], None]) -> None:
        self.say(f"{title} ...")
        t = time.perf_counter()
        section = _Section(anchor, title)
        try:
            fn(section)
        except Exception as err:  # noqa: BLE001 - one broken section must not cost the whole report
            log.exception("report section %r failed", title)
            message = f"{type(err).__name__}: {err}"
            self.errors.append({"section": anchor, "error": message})
            section.body.append(f'<p class="error">This section failed: {_esc(message)}</p>')
        self.seconds[anchor] = round(time.perf_counter() - t, 2)
        self.sections.append(section)

    # -- setup --------------------------------------------------------------------------------------------

    def setup(self) -> None:
        import vgim
        from vgim.data.corpus import load_corpus
        from vgim.data.synthetic import synthesize_corpus

        t = time.perf_counter()
        self.say(f"loading {self.run_dir}")
        self.model = vgim.load(self.run_dir, device="cpu")
        cfg = self.model.config
        if cfg is None:
            raise ValueError(f"{self.run_dir}: the loaded model has no config")
        self.cfg = cfg
        self.name = cfg.name or self.run_dir.name
        self.method = _method(self.model)
        self.speaker_key = cfg.data.speaker_key or "speaker"
        if self.corpus_arg is None:
            manifest = synthesize_corpus(progress=self.progress)
            self.corpus = load_corpus(manifest.parent, manifest=str(manifest), progress=self.progress)
            self.corpus_source = f"the embedded synthetic corpus ({manifest.parent})"
        else:
            self.corpus = self.corpus_arg
            self.corpus_source = "the corpus passed to build_report"
        self.train, self.test, self.split_how = _split_for_report(self.corpus, self.seed)
        self.examples = self._pick_examples()
        self.seconds["setup"] = round(time.perf_counter() - t, 2)
        self.data["corpus"] = {
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

    def _example(self, corpus: AudioCorpus, i: int) -> _Example:
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
        return _Example(i, u, wave, segments, syllables, _describe(u, self.speaker_key))

    def _pick_examples(self) -> list[_Example]:
        """``n_examples`` test utterances, one per speaker first (in corpus order), then the next ones."""
        n = max(1, self.n_examples)
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
        return [self._example(self.test, i) for i in chosen]

    # -- sections -----------------------------------------------------------------------------------------

    def config_section(self, s: _Section) -> None:
        path = self.run_dir / "config.json"
        cfg = json.loads(path.read_text()) if path.is_file() else self.cfg.to_dict()
        self.data["config"] = cfg
        layers = ", ".join(
            f"{spec.kind} {spec.channels}" + (f" k{spec.kernel}/s{spec.stride}" if spec.kind != "gru" else "")
            for spec in self.cfg.model.layers
        )
        s.body.append(
            f"<p>{self.model.n_modules} modules of {_esc(self.cfg.model.modules)} layers: {_esc(layers)}. "
            f"Variational: {_esc(self.cfg.model.variational)}, beta = {_esc(self.cfg.objective.beta)}; "
            f"{_esc(self.cfg.train.steps)} training steps in mode {_esc(self.cfg.train.mode)}.</p>"
        )
        rows = [
            (
                f"m{m + 1}",
                f"{fr.hop} ({1000 * fr.hop / 16000:.3g} ms)",
                f"{fr.receptive_field} ({1000 * fr.receptive_field / 16000:.3g} ms)",
                self.model.block(m).out_channels,
                "yes" if self.model.block(m).variational else "no",
            )
            for m, fr in enumerate(self.model.frames)
        ]
        s.body.append(
            _table(
                ["module", "hop, samples", "receptive field, samples", "channels of c", "variational"],
                rows,
                caption="Frame geometry at 16 kHz",
            )
        )
        s.body.append(f"<details><summary>config.json</summary><pre>{_esc(json.dumps(cfg, indent=2))}</pre></details>")

    def training_section(self, s: _Section) -> None:
        from vgim.interpret.diagnostics import (
            accuracy_per_k,
            plot_accuracy_per_k,
            plot_training_curves,
            read_metrics,
        )

        metrics_csv = self.run_dir / "metrics.csv"
        if not metrics_csv.is_file():
            self.note(s, f"No training curves: {metrics_csv} does not exist (a run exported without its log).")
            return
        metrics = read_metrics(metrics_csv)
        curves = plot_training_curves(metrics_csv, self.out / "training_curves.png", title=f"{self.name}: training")
        s.body.append(self.img(curves, "Loss, InfoNCE, KL and InfoNCE accuracy of every module per training step."))
        final_rows = []
        final: dict[str, dict[str, float]] = {}
        for m, cols in metrics.items():
            last = {k: float(v[-1]) for k, v in cols.items() if k in ("step", "loss", "infonce", "kl", "accuracy")}
            last |= {"mi_bound": float(cols["mi_bound"][-1])} if "mi_bound" in cols else {}
            final[f"m{m + 1}"] = last
            final_rows.append(
                (
                    f"m{m + 1}",
                    f"{last.get('step', math.nan):.0f}",
                    f"{last.get('loss', math.nan):.3f}",
                    f"{last.get('infonce', math.nan):.3f}",
                    f"{last.get('kl', math.nan):.2f}",
                    f"{100 * last.get('accuracy', math.nan):.1f}",
                    f"{last.get('mi_bound', math.nan):.3f}",
                )
            )
        s.body.append(
            _table(
                ["module", "step", "loss (nats)", "InfoNCE (nats)", "KL (nats)", "accuracy (%)", "MI bound (nats)"],
                final_rows,
                caption="Last logged training step (one batch each; noisy)",
            )
        )
        n_logged = min(len(cols["step"]) for cols in metrics.values())
        average = max(1, min(4, n_logged))
        try:
            acc = accuracy_per_k(metrics_csv, average_last=average)
        except ValueError as err:
            self.note(s, f"No accuracy per prediction step: {err}")
            self.data["training"] = {"final": final}
            return
        png = plot_accuracy_per_k(metrics_csv, self.out / "accuracy_per_k.png", average_last=average)
        s.body.append(
            self.img(
                png,
                f"InfoNCE accuracy of picking the true future latent among {self.cfg.objective.n_negatives} negatives "
                f"+ the positive, per prediction step k (mean of the last {average} logged steps).",
            )
        )
        k_max = max(len(a) for a in acc.values())
        rows = [
            [f"m{m + 1}"] + [f"{100 * a[k]:.1f}" if k < len(a) else "-" for k in range(k_max)] for m, a in acc.items()
        ]
        s.body.append(_table(["module"] + [f"k={k + 1}" for k in range(k_max)], rows, caption="Accuracy (%) per k"))
        self.data["training"] = {
            "final": final,
            "accuracy_per_k": {f"m{m + 1}": a for m, a in acc.items()},
            "accuracy_average_last": average,
        }

    def probes_section(self, s: _Section) -> None:
        from vgim.evaluate.evaluation import EvaluationSplit, evaluate_models
        from vgim.evaluate.probes import DEFAULT_TASKS, available_tasks, results_table, results_to_json

        utts = self.train.utterances + self.test.utterances
        usable = available_tasks(DEFAULT_TASKS, [u.labels for u in utts], [u.segments for u in utts])
        for t in DEFAULT_TASKS:
            if t not in usable:
                need = f"the label column '{t.key}'" + (" and syllable segments" if t.level == "segment" else "")
                self.note(s, f"No {t.name} probe: it needs {need} on every utterance.")
        if not usable:
            self.note(s, "No probe table: the corpus has none of the labels the probes need.")
            return
        split = EvaluationSplit(self.train, self.test)
        models = {self.name: self.model}
        try:
            results = evaluate_models(models, split, tasks=usable, seed=self.seed)
        except ValueError:
            results = []
            for t in usable:  # e.g. one class only in a tiny training split: keep the tasks that work
                try:
                    results += evaluate_models(models, split, tasks=[t], seed=self.seed)
                except ValueError as err:
                    self.note(s, f"No {t.name} probe: {err}")
        if not results:
            return
        s.body.append(
            f"<p>Linear probes (standardised logistic regression) trained on the frozen features of "
            f"{len(self.train)} training utterances and scored on {len(self.test)} test utterances "
            f"({_esc(self.split_how)}). Syllable, vowel and consonant are mean-pooled per syllable, speaker "
            "per utterance. Baselines: MFCC and a randomly initialised encoder of the same architecture.</p>"
        )
        s.body.append(
            markdown_table_to_html(
                results_table(results, "accuracy", chance=True), caption="Test accuracy (%); chance = majority class"
            )
        )
        s.body.append(
            "<details><summary>macro-F1 (%)</summary>"
            + markdown_table_to_html(results_table(results, "macro_f1"), caption="Test macro-F1 (%)")
            + "</details>"
        )
        self.data["probes"] = results_to_json(results)

    def maps_section(self, s: _Section) -> None:
        from vgim.evaluate.evaluation import corpus_features
        from vgim.evaluate.probes import DEFAULT_TASKS, available_tasks
        from vgim.interpret.maps import draw_maps

        utts = self.test.utterances
        usable = available_tasks(DEFAULT_TASKS, [u.labels for u in utts], [u.segments for u in utts])
        if not usable:
            self.note(s, "No t-SNE maps: the test utterances have none of the labels to colour the maps by.")
            return
        if len(self.test) < 3:
            self.note(s, f"No t-SNE maps: only {len(self.test)} test utterance(s).")
            return
        missing = [t.name for t in DEFAULT_TASKS if t not in usable]
        if missing:
            self.note(s, f"No map coloured by {', '.join(missing)}: the corpus lacks those labels (or segments).")
        feats = corpus_features(self.model, self.test.waves, self.test.sample_rate)
        files = draw_maps(self.model, self.test, self.out / "maps", tasks=usable, seed=self.seed, features=feats)
        s.body.append(
            f"<p>t-SNE of every module's representation c, mean-pooled per syllable (syllable, vowel, consonant "
            f"share one map) or per utterance (speaker), on the {len(self.test)} test utterances. Each dimension "
            "is standardised first; distances between far-apart clusters mean little in t-SNE.</p>"
        )
        self.data["maps"] = [str(p.relative_to(self.out)) for p in files]
        for m in range(self.model.n_modules):
            mine = [p for p in files if p.name.startswith(f"m{m + 1}_")]
            s.body.append(f"<h3>Module m{m + 1}</h3><div class='grid'>")
            s.body.extend(self.img(p, f"m{m + 1}, coloured by {p.stem.split('_', 1)[1]}") for p in mine)
            s.body.append("</div>")

    def decoders_section(self, s: _Section) -> None:
        from vgim.audio import write_audio
        from vgim.interpret.decoders import (
            load_decoders,
            log_spectral_distance,
            plot_reconstruction,
            reconstruct,
            train_decoders,
        )

        n = self.model.n_modules
        existing = _finished_decoders(self.run_dir, n)
        if existing is not None:
            self.decoders = load_decoders(existing)
            meta = json.loads((existing / "metrics.json").read_text())
            metrics = {int(d["module"]): d for d in meta["modules"]}
            steps = int(meta["steps"])
            source = f"the run's own finished decoders ({existing}, {steps} steps)"
        else:
            res = train_decoders(
                self.run_dir,
                corpus=self.corpus,
                steps=self.decoder_steps,
                out_dir=self.out / "decoders",
                progress=self.progress,
                seed=self.seed,
                n_examples=0,
            )
            self.decoders = load_decoders(res.out_dir)
            metrics = {m: dict(v) for m, v in res.metrics.items()}
            steps = res.step
            source = (
                f"decoders trained for this report ({steps} steps, batch 8, in {res.seconds:.0f} s; saved in "
                "decoders/). A short budget: expect muffled, noisy audio. Train longer with "
                "vgim.interpret.train_decoders(RUN, steps=2000) into RUN/decoders, which the report then reuses"
            )
        s.body.append(
            "<p>Each module's representation c is decoded back to a waveform by a transposed-convolution decoder "
            "that mirrors the encoder's layers up to that module (the encoder stays frozen). Source: "
            f"{_esc(source)}.</p>"
        )
        rows = [
            (
                f"m{m + 1}",
                f"{v['mse']:.2e}",
                f"{v.get('mse_silence', math.nan):.2e}",
                f"{v['snr_db']:.1f}",
                f"{v['lsd_db']:.1f}",
                f"{v.get('n_files', math.nan):.0f}",
            )
            for m, v in sorted(metrics.items())
        ]
        s.body.append(
            _table(
                ["module", "waveform MSE", "MSE of silence", "SNR (dB)", "log-spectral distance (dB)", "files"],
                rows,
                caption="Reconstruction of held-out audio (lower MSE / LSD and higher SNR are better)",
            )
        )
        examples: list[dict[str, Any]] = []
        sr = self.corpus.sample_rate
        for k, ex in enumerate(self.examples):
            rec = reconstruct(self.model, self.decoders, ex.wave)
            orig = self.out / "audio" / f"example{k}_original.wav"
            write_audio(orig, ex.wave, sr)
            players = [self.audio(orig, "original")]
            scores: dict[int, dict[str, float]] = {}
            for m, y in rec.items():
                path = self.out / "audio" / f"example{k}_m{m + 1}.wav"
                write_audio(path, y, sr)
                scores[m] = {"mse": float(np.mean((y - ex.wave) ** 2)), "lsd_db": log_spectral_distance(ex.wave, y)}
                players.append(
                    self.audio(path, f"m{m + 1} (MSE {scores[m]['mse']:.1e}, LSD {scores[m]['lsd_db']:.1f} dB)")
                )
            png = plot_reconstruction(
                ex.wave,
                rec,
                self.out / f"reconstruction_{k}.png",
                sample_rate=sr,
                title=f"{ex.label} decoded from each module",
                scores=scores,
            )
            s.body.append(f"<h3>Example {k + 1}: {_esc(ex.label)}</h3>")
            s.body.append('<div class="players">' + "".join(players) + "</div>")
            s.body.append(
                self.img(png, "Waveform (left) and log-power spectrogram (right) of the original and of each module")
            )
            examples.append(
                {"label": ex.label, "path": ex.utterance.path, "scores": {f"m{m + 1}": scores[m] for m in scores}}
            )
        self.data["decoders"] = {
            "source": "reused" if existing is not None else "trained",
            "steps": steps,
            "metrics": {f"m{m + 1}": v for m, v in sorted(metrics.items())},
            "examples": examples,
        }

    def traversal_section(self, s: _Section) -> None:
        from vgim.audio import write_audio
        from vgim.interpret.traversal import plot_traversal, traverse, write_traversal_audio

        if not self.decoders:
            self.note(s, "No traversals: there are no decoders (see the reconstruction section).")
            return
        ex = self.examples[0]
        sr = self.corpus.sample_rate
        s.body.append(
            f"<p>On example 1 ({_esc(ex.label)}), one latent dimension of a module is shifted by the same offset at "
            "every frame while the others keep their values; the rest of the module (its GRU) runs on the modified "
            "latent and the module's decoder turns it into audio. Variational modules are swept in prior standard "
            "deviations around the posterior mean mu; deterministic modules around z, in units of that dimension's "
            "standard deviation over time on this utterance. Dimensions are ranked by effect: the log-spectral "
            "distance between the two ends of the sweep. Each sweep below plays the offsets from lowest to highest "
            f"with {SWEEP_GAP_SECONDS:g} s of silence in between.</p>"
        )
        result: dict[str, Any] = {}
        gap = np.zeros(int(SWEEP_GAP_SECONDS * sr), dtype=np.float32)
        for m in sorted(self.decoders):
            tr = traverse(self.model, self.decoders[m], ex.wave, m, n_steps=TRAVERSAL_STEPS)
            png = plot_traversal(tr, self.out / f"traversal_m{m + 1}.png", n_dims=TRAVERSAL_PLOT_DIMS)
            top = min(TRAVERSAL_AUDIO_DIMS, len(tr.dims))
            folder = self.out / "audio" / f"traversal_m{m + 1}"
            write_traversal_audio(dataclasses.replace(tr, dims=tr.dims[:top], audio=tr.audio[:top]), folder)
            unit = "prior std" if tr.variational else "std over time"
            kind = "variational: sweep around mu" if tr.variational else "deterministic: sweep around z"
            s.body.append(f"<h3>Module m{m + 1} ({kind}, offsets in {unit})</h3>")
            s.body.append(
                '<div class="players">'
                + self.audio(folder / "original.wav", "original")
                + self.audio(folder / "reconstruction.wav", f"m{m + 1} reconstruction (no offset)")
                + "</div>"
            )
            rows = []
            for k in range(top):
                d = int(tr.dims[k])
                sweep = np.concatenate([np.concatenate([tr.audio[k, j], gap]) for j in range(len(tr.offsets))])
                sweep_path = folder / f"m{m + 1}_dim{d:03d}_sweep.wav"
                write_audio(sweep_path, sweep, sr)
                links = []
                for j, v in enumerate(tr.offsets):
                    step_wav = folder / f"m{m + 1}_dim{d:03d}_step{j}_{float(v):+.2f}.wav"
                    links.append(f'<a href="{self.rel(step_wav)}">{float(v):+.2f}</a>')
                steps = " ".join(links)
                kl = "-" if np.isnan(tr.kl[k]) else f"{tr.kl[k]:.3f}"
                rows.append(
                    f"<tr><td>{d}</td><td class='num'>{tr.effect_db[k]:.2f}</td><td class='num'>{kl}</td>"
                    f"<td class='num'>{tr.scale[k]:.3g}</td>"
                    f'<td><audio controls preload="metadata" src="{self.rel(sweep_path)}"></audio></td>'
                    f"<td class='small'>{steps}</td></tr>"
                )
            s.body.append(
                "<table><caption>The "
                f"{top} dimensions with the largest effect (all {len(tr.dims)} are ranked in report.json)</caption>"
                "<thead><tr><th>dim</th><th class='num'>effect (dB)</th><th class='num'>KL (nats/frame)</th>"
                f"<th class='num'>unit ({_esc(unit)})</th><th>sweep, low to high</th><th>single steps (WAV)</th>"
                "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            )
            s.body.append(
                self.img(
                    png,
                    "Log-power spectrograms of the decoded audio: rows are the "
                    f"{min(TRAVERSAL_PLOT_DIMS, len(tr.dims))} highest-ranked dimensions, columns the offsets.",
                )
            )
            result[f"m{m + 1}"] = {
                "variational": tr.variational,
                "dims": tr.dims,
                "effect_db": tr.effect_db,
                "kl": tr.kl,
                "scale": tr.scale,
                "offsets": tr.offsets,
            }
        self.data["traversals"] = {"utterance": ex.utterance.path, "modules": result}

    def interpolation_section(self, s: _Section) -> None:
        from vgim.audio import write_audio
        from vgim.interpret.traversal import interpolate, plot_interpolation

        if not self.decoders:
            self.note(s, "No interpolation: there are no decoders (see the reconstruction section).")
            return
        a = self.examples[0]
        key = self.speaker_key
        spk_a = a.utterance.labels.get(key)
        word_a = a.utterance.labels.get("word")
        partner: _Example | None = None
        if spk_a is not None:
            for corpus in (self.test, self.train):
                for prefer_other_word in (True, False):
                    for i, u in enumerate(corpus.utterances):
                        if partner is None and u.labels.get(key) not in (None, spk_a):
                            if not prefer_other_word or u.labels.get("word") != word_a:
                                partner = self._example(corpus, i)
        if partner is None:
            others = [i for i in range(len(self.test)) if i != a.index]
            why = f"the corpus has no '{key}' labels" if spk_a is None else f"every utterance is spoken by {spk_a}"
            if not others:
                self.note(s, f"No interpolation: {why} and there is no second test utterance.")
                return
            self.note(s, f"Not between two speakers: {why}; interpolating between two different utterances instead.")
            partner = self._example(self.test, others[0])
        b = partner
        sr = self.corpus.sample_rate
        s.body.append(
            f"<p>A = {_esc(a.label)}, B = {_esc(b.label)}. Both utterances are encoded, their latents (mu for a "
            "variational module, z otherwise) are cropped to the shorter one's frames and mixed as "
            "(1 - a)·A + a·B, then the rest of the module runs and its decoder renders the audio.</p>"
        )
        result: dict[str, Any] = {"a": a.label, "b": b.label, "weights": [], "modules": []}
        for m in sorted(self.decoders):
            frames = interpolate(self.model, self.decoders[m], a.wave, b.wave, m, n_steps=INTERPOLATION_STEPS)
            png = plot_interpolation(frames, self.out / f"interpolation_m{m + 1}.png", sample_rate=sr, module=m)
            players = []
            weights = []
            for j, wave in enumerate(frames):
                w = j / (len(frames) - 1)
                weights.append(w)
                path = self.out / "audio" / f"interpolation_m{m + 1}_step{j}.wav"
                write_audio(path, wave, sr)
                label = "A" if j == 0 else "B" if j == len(frames) - 1 else f"{1 - w:.2f}·A + {w:.2f}·B"
                players.append(self.audio(path, label))
            s.body.append(f"<h3>Module m{m + 1}</h3>")
            s.body.append('<div class="players">' + "".join(players) + "</div>")
            s.body.append(
                self.img(png, f"Log-power spectrograms along the line from A to B in m{m + 1}'s latent space")
            )
            result["weights"] = weights
            result["modules"].append(f"m{m + 1}")
        self.data["interpolation"] = result

    def activations_section(self, s: _Section) -> None:
        from vgim.interpret.activations import plot_activations

        ex = self.examples[0]
        s.body.append(
            f"<p>Example 1 ({_esc(ex.label)}): each module's representation c over time, under the waveform "
            "(syllables shaded when the corpus has segments). Frames are placed at their centre sample.</p>"
        )
        for m in range(self.model.n_modules):
            png = plot_activations(
                self.model,
                ex.wave,
                m,
                self.out / f"activations_m{m + 1}.png",
                sample_rate=self.corpus.sample_rate,
                segments=ex.segments,
                segment_labels=ex.syllables,
            )
            s.body.append(self.img(png, f"m{m + 1}: top channels by standard deviation, and all channels"))

    def kernels_section(self, s: _Section) -> None:
        from vgim.interpret.activations import kernel_frequencies, kernel_responses, plot_kernel_responses

        try:
            resp = kernel_responses(self.model)
        except ValueError as err:
            self.note(s, f"No kernel responses: {err}.")
            return
        png = plot_kernel_responses(self.model, self.out / "kernels.png")
        peaks = kernel_frequencies()[resp.argmax(axis=1)]
        s.body.append(
            self.img(
                png,
                "Magnitude frequency response of every first-layer kernel (rows, sorted by peak frequency), "
                "relative to its own peak.",
            )
        )
        s.body.append(
            f"<p>Peak frequencies: median {np.median(peaks):.0f} Hz, {int(np.sum(peaks < 1000))} of {len(peaks)} "
            f"kernels peak below 1 kHz, {int(np.sum(peaks >= 4000))} at or above 4 kHz.</p>"
        )
        self.data["kernels"] = {"peak_hz": peaks}

    def diagnostics_section(self, s: _Section) -> None:
        from vgim.interpret.diagnostics import (
            DEFAULT_FACTORS,
            active_dimensions,
            disentanglement,
            latent_kl,
            plot_latent_kl,
            plot_mi_matrix,
            syllable_factors,
        )

        s.body.append("<h3>Posterior collapse: KL per latent dimension</h3>")
        variational = [m for m in range(self.model.n_modules) if self.model.block(m).variational]
        deterministic = [m for m in range(self.model.n_modules) if m not in variational]
        if not variational:
            self.note(
                s,
                f"No KL section: this is a {self.method} run, so its modules are deterministic. They have no "
                "posterior q(z|x) and no KL term, hence no posterior collapse to measure.",
            )
        else:
            if deterministic:
                det = ", ".join(f"m{m + 1}" for m in deterministic)
                self.note(s, f"{det}: deterministic (no convolution, so no posterior): no KL.")
            kls = {f"m{m + 1}": latent_kl(self.model, self.test.waves, m, self.test.sample_rate) for m in variational}
            png = plot_latent_kl(kls, self.out / "latent_kl.png", threshold=KL_THRESHOLD, title=f"{self.name}: KL")
            rows = [
                (name, len(kl), active_dimensions(kl, KL_THRESHOLD), f"{kl.sum():.2f}", f"{kl.max():.3f}")
                for name, kl in kls.items()
            ]
            s.body.append(
                f"<p>KL(q(z|x) || N(0, I)) per latent dimension, averaged over the frames of the {len(self.test)} "
                f"test utterances. A dimension with KL below {KL_THRESHOLD:g} nats has collapsed onto the prior and "
                "carries no information.</p>"
            )
            s.body.append(
                _table(
                    ["module", "dimensions", f"active (KL > {KL_THRESHOLD:g})", "total KL (nats)", "max KL (nats)"],
                    rows,
                )
            )
            s.body.append(self.img(png, "Per-dimension KL, sorted, log scale"))
            self.data["kl"] = {
                name: {"per_dim": kl, "active": active_dimensions(kl, KL_THRESHOLD), "total": float(kl.sum())}
                for name, kl in kls.items()
            } | {"threshold": KL_THRESHOLD}

        s.body.append("<h3>Disentanglement: mutual information gap (MIG)</h3>")
        if any(u.segments is None for u in self.test.utterances):
            self.note(s, "No MIG: the test utterances lack syllable segments (MIG is computed per syllable).")
            return
        try:
            facts = syllable_factors(self.test)
        except ValueError as err:
            self.note(s, f"No MIG: {err}.")
            return
        constant = [f for f, v in facts.items() if len(set(v.tolist())) < 2]
        factors = {f: DEFAULT_FACTORS.get(f, f) for f in facts if f not in constant}
        lacking = [f for f in DEFAULT_FACTORS if f not in facts]
        if lacking:
            self.note(s, f"MIG without {', '.join(lacking)}: the corpus has no such label column.")
        if constant:
            self.note(s, f"MIG without {', '.join(constant)}: a single value in the test split.")
        if not factors:
            self.note(s, "No MIG: no factor with at least two values.")
            return
        n_syll = len(next(iter(facts.values())))
        n_bins = int(min(20, max(2, n_syll // 10)))
        res = disentanglement(self.model, self.test, factors=factors, n_bins=n_bins)
        names = list(factors)
        s.body.append(
            f"<p>Each latent dimension (mu or z, mean-pooled per syllable; {n_syll} test syllables, {n_bins} "
            "equal-frequency bins) against each factor: normalised mutual information I(z_c; factor) / H(factor). "
            "The gap is the best dimension's value minus the second best; MIG is the mean gap (1: one dimension "
            "per factor, 0: every factor spread over many dimensions). Pitch is binned into 4 bins.</p>"
        )
        mig_rows = [
            [f"m{m + 1}", f"{r.mig:.3f}"]
            + [f"{g:.3f} (dim {int(d)})" for g, d in zip(r.gaps, r.best_dims, strict=True)]
            for m, r in res.items()
        ]
        s.body.append(_table(["module", "MIG"] + [f"gap: {f} (best dim)" for f in names], mig_rows))
        for m, r in res.items():
            png = plot_mi_matrix(r, self.out / f"mi_matrix_m{m + 1}.png", title=f"m{m + 1}: MIG {r.mig:.3f}")
            s.body.append(self.img(png, f"m{m + 1}: normalised MI of every latent dimension with every factor"))
        self.data["mig"] = {f"m{m + 1}": r.to_dict() for m, r in res.items()}

    # -- page ---------------------------------------------------------------------------------------------

    def write(self) -> Path:
        total = time.perf_counter() - self.t0
        built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        nav = "".join(f'<li><a href="#{s.anchor}">{_esc(s.title)}</a></li>' for s in self.sections)
        meta_rows = [
            ("run", str(self.run_dir)),
            ("method", f"{self.method} ({self.model.n_modules} modules)"),
            ("corpus", f"{self.corpus_source}: {self.corpus.describe()}"),
            ("split", f"{self.split_how}: {len(self.train)} train / {len(self.test)} test utterances"),
            ("built", f"{built} in {total:.0f} s"),
        ]
        meta = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in meta_rows)
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',  # no favicon request
            f"<title>{_esc(self.name)}: vgim report</title>",
            f"<script>{_CHECK_SCRIPT}</script>",
            f"<style>{_CSS}</style>",
            "</head><body><main>",
            f"<h1>{_esc(self.name)}: {_esc(self.method)} report</h1>",
            f'<table class="meta">{meta}</table>',
        ]
        if self.errors:
            items = "".join(f"<li>{_esc(e['section'])}: {_esc(e['error'])}</li>" for e in self.errors)
            parts.append(f'<div class="error">Some sections failed:<ul>{items}</ul></div>')
        parts.append(f"<nav><strong>Contents</strong><ol>{nav}</ol></nav>")
        for sec in self.sections:
            parts.append(f'<section id="{sec.anchor}"><h2>{_esc(sec.title)}</h2>')
            parts.extend(sec.body)
            parts.append("</section>")
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        parts.append(f'<p class="small">Time per section: {_esc(timing)}; total {total:.1f} s.</p>')
        parts.append('<p id="page-check">Page check: waiting for the page to load.</p>')
        parts.append("</main></body></html>")
        index = self.out / REPORT_FILE
        index.write_text("\n".join(parts) + "\n", encoding="utf-8")
        summary = {
            "run": str(self.run_dir),
            "name": self.name,
            "method": self.method,
            "built": built,
            "seconds": self.seconds | {"total": round(total, 2)},
            "notes": self.notes,
            "errors": self.errors,
        } | self.data
        (self.out / REPORT_JSON).write_text(json.dumps(_clean(summary), indent=2) + "\n", encoding="utf-8")
        return index


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch, BLAS and OpenMP on one thread, restoring the previous settings afterwards.

    Every model here is small, so a second thread gains little; on a shared 2-core machine, and with
    ``torch.set_flush_denormal`` applying only to the calling thread (the decoders' gradients on quiet
    audio run into denormal floats in the other worker threads), multi-threaded decoder training was
    measured 30x slower (206 s instead of 6.7 s for 40 steps of the ``vgim-small`` decoders).
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def build_report(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    corpus: AudioCorpus | None = None,
    decoder_steps: int = 400,
    n_examples: int = 2,
    progress: bool = True,
    seed: int = 0,
) -> Path:
    """Write a self-contained HTML report of a trained run and return the path of its ``index.html``.

    Parameters
    ----------
    run_dir
        A trained run directory (``config.json``, ``metrics.csv``, ``export/`` or ``checkpoints/``).
    out_dir
        Report folder (created; files in it are overwritten); default ``run_dir/report``. It holds
        ``index.html``, ``report.json``, the PNG figures, ``audio/*.wav``, ``maps/`` and (when the decoders
        are trained for the report) ``decoders/``. When the report fails, a folder it created is removed.
    corpus
        Audio and labels to report on; ``None``: the embedded synthetic corpus
        (:func:`vgim.data.synthetic.synthesize_corpus` + :func:`vgim.data.corpus.load_corpus`). Its ``train``
        split trains the probes and decoders; its ``test`` split gives the examples, maps, probe scores and
        diagnostics. Without both splits a seeded 80/20 split by utterance is used. Sections whose labels or
        segments the corpus lacks are replaced by a note.
    decoder_steps
        Training steps of the per-module decoders (batch 8) when ``run_dir/decoders`` does not already
        hold finished decoders for every module (those are reused). 400 steps take about a minute for the
        ``*-small`` presets on 2 CPU cores.
    n_examples
        Test utterances reconstructed (one per speaker first); the first one is also traversed, shown in
        the activations and used as end A of the interpolation.
    progress
        Print a line per section (and the decoders' progress bar) to stderr.

    Notes
    -----
    Everything runs on one thread (torch and BLAS/OpenMP; restored afterwards): the models are small and
    multi-threaded decoder training was found to be much slower on a busy 2-core CPU.
    seed
        Seeds the probes, t-SNE, the decoders and the fallback split.

    Returns
    -------
    Path
        ``<out_dir>/index.html``.
    """
    run = Path(run_dir)
    if not run.exists():
        raise FileNotFoundError(f"{run}: no such run directory")
    if decoder_steps < 1:
        raise ValueError(f"decoder_steps must be >= 1, got {decoder_steps}")
    if n_examples < 1:
        raise ValueError(f"n_examples must be >= 1, got {n_examples}")
    out = Path(out_dir) if out_dir is not None else run / "report"
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _build(run, out, corpus, decoder_steps, n_examples, progress, seed)
    except BaseException:
        if created:  # a failed report leaves no folder behind (its partial figures have no page)
            shutil.rmtree(out, ignore_errors=True)
        raise


def _build(
    run: Path,
    out: Path,
    corpus: AudioCorpus | None,
    decoder_steps: int,
    n_examples: int,
    progress: bool,
    seed: int,
) -> Path:
    b = _Builder(run, out, corpus, decoder_steps, n_examples, progress, seed)
    with _single_thread():
        b.setup()
        b.run("config", "Configuration", b.config_section)
        b.run("training", "Training curves and accuracy per prediction step", b.training_section)
        b.run("probes", "Linear probes", b.probes_section)
        b.run("maps", "t-SNE maps", b.maps_section)
        b.run("reconstructions", "Reconstructions from every module", b.decoders_section)
        b.run("traversals", "Latent traversals", b.traversal_section)
        b.run("interpolation", "Interpolation between two speakers", b.interpolation_section)
        b.run("activations", "Activations over time", b.activations_section)
        b.run("kernels", "First-layer kernels", b.kernels_section)
        b.run("diagnostics", "Diagnostics: KL, active dimensions, disentanglement", b.diagnostics_section)
    index = b.write()
    b.say(f"wrote {index} in {time.perf_counter() - b.t0:.0f} s")
    return index
