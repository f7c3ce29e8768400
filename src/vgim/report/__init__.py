"""``vgim report RUN``: one self-contained HTML page about a trained run (:func:`build_report`).

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

Which file holds what:

- :mod:`vgim.report.build`: :func:`build_report` and the list of sections (:data:`~vgim.report.build.SECTIONS`);
- :mod:`vgim.report.context`: loading the run and the corpus, the train/test split and the examples
  (:class:`~vgim.report.context.ReportContext`, read by every section);
- :mod:`vgim.report.page`: the HTML helpers, the page skeleton (CSS, the page-check script), the section
  runner with its error handling and timing, and the writing of ``index.html`` and ``report.json``;
- :mod:`vgim.report.sections`: one module per section (``overview``: configuration; ``training``;
  ``probes``; ``maps``; ``decoders``: reconstructions; ``traversals``: traversals and interpolation;
  ``activations``: activations and kernels; ``diagnostics``: KL and MIG). Each section function fills a
  :class:`~vgim.report.page.Section` with its HTML, its notes and its numbers for ``report.json``; the
  computations live in :mod:`vgim.interpret` and :mod:`vgim.evaluate`.
"""

from vgim.report.build import build_report
from vgim.report.page import REPORT_FILE, REPORT_JSON, markdown_table_to_html

__all__ = ["REPORT_FILE", "REPORT_JSON", "build_report", "markdown_table_to_html"]
