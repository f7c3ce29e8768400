"""The page: HTML helpers, the page skeleton (CSS, the page-check script), :class:`Section` and :class:`Page`.

:class:`Page` runs the sections one by one (a section that fails shows its error on the page and in
``report.json["errors"]`` instead of aborting the whole report), times them, and writes ``index.html`` and
``report.json``.

A small inline script checks, once the page has loaded, that every image and audio file loaded, and
writes the result into the ``#page-check`` element (text for the reader, JSON in its ``data-status``
attribute for automated checks).
"""

from __future__ import annotations

import html
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from vgim.report.context import ReportContext

__all__ = ["REPORT_FILE", "REPORT_JSON", "Page", "Section", "esc", "json_safe", "markdown_table_to_html", "table"]

log = logging.getLogger("vgim")

#: The page written by :func:`vgim.report.build_report`.
REPORT_FILE = "index.html"
#: The numbers shown on the page.
REPORT_JSON = "report.json"


# ---------------------------------------------------------------------------------------------------------
# HTML helpers


def esc(text: object) -> str:
    """``text`` as HTML text or attribute value (``&``, ``<``, ``>`` and quotes escaped)."""
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
            out.append(f"<{tag}{cls}>{esc(v)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append("<thead>" + row(header, "th") + "</thead><tbody>")
    parts.extend(row(cells(ln), "td") for ln in lines[2:])
    parts.append("</tbody></table>")
    return "\n".join(parts)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "", numeric_from: int = 1) -> str:
    """HTML table; columns from ``numeric_from`` on are right-aligned; floats are shown as given (format first)."""
    cls = ["" if i < numeric_from else "num" for i in range(len(header))]

    def tr(values: Sequence[object], tag: str) -> str:
        out = []
        for i, v in enumerate(values):
            attr = f' class="{cls[i]}"' if i < len(cls) and cls[i] else ""
            out.append(f"<{tag}{attr}>{esc(v)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
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
# sections and the page


@dataclass
class Section:
    """One section of the page: its HTML (``body``), its notes, and the numbers it adds to ``report.json``.

    ``out`` is the report folder; :meth:`img`, :meth:`audio` and :meth:`rel` link files relative to it.
    """

    anchor: str
    title: str
    out: Path
    body: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def rel(self, path: Path) -> str:
        """The URL of ``path`` relative to the report folder."""
        return quote(Path(path).resolve().relative_to(self.out.resolve()).as_posix())

    def img(self, path: Path, caption: str = "", alt: str = "") -> str:
        """A ``<figure>`` showing the image ``path``."""
        cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        return f'<figure><img src="{self.rel(path)}" alt="{esc(alt or caption or path.stem)}">{cap}</figure>'

    def audio(self, path: Path, label: str) -> str:
        """A labelled audio player of the WAV file ``path``."""
        return (
            f'<div class="player"><span>{esc(label)}</span>'
            f'<audio controls preload="metadata" src="{self.rel(path)}"></audio></div>'
        )

    def note(self, text: str) -> None:
        """Show ``text`` as a note (why something is missing) and record it in ``report.json["notes"]``."""
        self.notes.append(text)
        self.body.append(f'<p class="note">{esc(text)}</p>')


def json_safe(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None, paths to str."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


class Page:
    """The sections run so far, their errors and timings, and the numbers for ``report.json``."""

    def __init__(self, out: Path, progress: bool) -> None:
        self.out = out
        self.progress = progress
        self.t0 = time.perf_counter()
        self.sections: list[Section] = []
        self.data: dict[str, Any] = {}
        self.errors: list[dict[str, str]] = []
        self.seconds: dict[str, float] = {}

    def say(self, message: str) -> None:
        """Log ``message``; with ``progress``, also print it to stderr with the time since the start."""
        log.info("report: %s", message)
        if self.progress:
            print(f"[report {time.perf_counter() - self.t0:6.1f} s] {message}", file=sys.stderr, flush=True)

    def run(self, anchor: str, title: str, fn: Callable[[Section], None]) -> None:
        """Run one section: ``fn`` fills a new :class:`Section`; an exception becomes an error on the page."""
        self.say(f"{title} ...")
        t = time.perf_counter()
        section = Section(anchor, title, self.out)
        try:
            fn(section)
        except Exception as err:  # noqa: BLE001 - one broken section must not cost the whole report
            log.exception("report section %r failed", title)
            message = f"{type(err).__name__}: {err}"
            self.errors.append({"section": anchor, "error": message})
            section.body.append(f'<p class="error">This section failed: {esc(message)}</p>')
        self.seconds[anchor] = round(time.perf_counter() - t, 2)
        self.sections.append(section)

    def section_data(self) -> dict[str, Any]:
        """The numbers of ``report.json``: :attr:`data` (set before the sections), then each section's own."""
        data = dict(self.data)
        for section in self.sections:
            data |= section.data
        return data

    def write(self, ctx: ReportContext) -> Path:
        """Write ``index.html`` and ``report.json`` into the report folder; return the path of the page."""
        total = time.perf_counter() - self.t0
        built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        nav = "".join(f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in self.sections)
        meta_rows = [
            ("run", str(ctx.run_dir)),
            ("method", f"{ctx.method} ({ctx.model.n_modules} modules)"),
            ("corpus", f"{ctx.corpus_source}: {ctx.corpus.describe()}"),
            ("split", f"{ctx.split_how}: {len(ctx.train)} train / {len(ctx.test)} test utterances"),
            ("built", f"{built} in {total:.0f} s"),
        ]
        meta = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in meta_rows)
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',  # no favicon request
            f"<title>{esc(ctx.name)}: vgim report</title>",
            f"<script>{_CHECK_SCRIPT}</script>",
            f"<style>{_CSS}</style>",
            "</head><body><main>",
            f"<h1>{esc(ctx.name)}: {esc(ctx.method)} report</h1>",
            f'<table class="meta">{meta}</table>',
        ]
        if self.errors:
            items = "".join(f"<li>{esc(e['section'])}: {esc(e['error'])}</li>" for e in self.errors)
            parts.append(f'<div class="error">Some sections failed:<ul>{items}</ul></div>')
        parts.append(f"<nav><strong>Contents</strong><ol>{nav}</ol></nav>")
        for sec in self.sections:
            parts.append(f'<section id="{sec.anchor}"><h2>{esc(sec.title)}</h2>')
            parts.extend(sec.body)
            parts.append("</section>")
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        parts.append(f'<p class="small">Time per section: {esc(timing)}; total {total:.1f} s.</p>')
        parts.append('<p id="page-check">Page check: waiting for the page to load.</p>')
        parts.append("</main></body></html>")
        index = self.out / REPORT_FILE
        index.write_text("\n".join(parts) + "\n", encoding="utf-8")
        summary = {
            "run": str(ctx.run_dir),
            "name": ctx.name,
            "method": ctx.method,
            "built": built,
            "seconds": self.seconds | {"total": round(total, 2)},
            "notes": [{"section": s.anchor, "note": n} for s in self.sections for n in s.notes],
            "errors": self.errors,
        } | self.section_data()
        (self.out / REPORT_JSON).write_text(json.dumps(json_safe(summary), indent=2) + "\n", encoding="utf-8")
        return index
