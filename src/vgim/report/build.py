"""``vgim report RUN``: :func:`build_report` runs the sections of :data:`SECTIONS` on one page.

See :mod:`vgim.report` for what the page shows and which file holds what.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vgim.data.corpus import AudioCorpus
from vgim.report.context import ReportContext, load_context
from vgim.report.page import Page, Section
from vgim.report.sections.activations import activations_section, kernels_section
from vgim.report.sections.decoders import decoders_section
from vgim.report.sections.diagnostics import diagnostics_section
from vgim.report.sections.maps import maps_section
from vgim.report.sections.overview import config_section
from vgim.report.sections.probes import probes_section
from vgim.report.sections.training import training_section
from vgim.report.sections.traversals import interpolation_section, traversal_section

__all__ = ["SECTIONS", "build_report"]

#: The sections of the page, in order: (anchor, title, function filling the section).
SECTIONS: list[tuple[str, str, Callable[[ReportContext, Section], None]]] = [
    ("config", "Configuration", config_section),
    ("training", "Training curves and accuracy per prediction step", training_section),
    ("probes", "Linear probes", probes_section),
    ("maps", "t-SNE maps", maps_section),
    ("reconstructions", "Reconstructions from every module", decoders_section),
    ("traversals", "Latent traversals", traversal_section),
    ("interpolation", "Interpolation between two speakers", interpolation_section),
    ("activations", "Activations over time", activations_section),
    ("kernels", "First-layer kernels", kernels_section),
    ("diagnostics", "Diagnostics: KL, active dimensions, disentanglement", diagnostics_section),
]


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
    traversal_origin: str = "latent",
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
    traversal_origin
        ``"latent"`` (sweep around the example's own latent) or ``"zero"`` (the V-GIM thesis's traversal
        from the zero vector); see :func:`vgim.interpret.traverse`.

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
    if traversal_origin not in ("latent", "zero"):
        raise ValueError(f"traversal_origin must be 'latent' or 'zero', got {traversal_origin!r}")
    out = Path(out_dir) if out_dir is not None else run / "report"
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        page = Page(out, progress)
        with _single_thread():
            t = time.perf_counter()
            ctx = load_context(
                run,
                out,
                corpus,
                decoder_steps=decoder_steps,
                traversal_origin=traversal_origin,
                n_examples=n_examples,
                progress=progress,
                seed=seed,
                say=page.say,
            )
            page.seconds["setup"] = round(time.perf_counter() - t, 2)
            page.data["corpus"] = ctx.corpus_summary()
            for anchor, title, fn in SECTIONS:
                page.run(anchor, title, functools.partial(fn, ctx))
        index = page.write(ctx)
        page.say(f"wrote {index} in {time.perf_counter() - page.t0:.0f} s")
        return index
    except BaseException:
        if created:  # a failed report leaves no folder behind (its partial figures have no page)
            shutil.rmtree(out, ignore_errors=True)
        raise
