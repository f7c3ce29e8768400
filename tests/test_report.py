"""Tests for vgim.report: build the HTML report of tiny runs, check every file it links, render it in Chromium.

The browser test needs Debian's ``chromium`` (``bash run.sh test`` installs it when it can); without it
that test is skipped. Chromium is driven without any extra Python package: the page's own inline check
script writes what loaded (and any script error) into ``#page-check``, which ``--dump-dom`` returns; its
stderr (``--enable-logging=stderr``) is also scanned for console errors.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import torch

from conftest import tiny_config, toy_waves
from vgim.data.batches import CropBatches
from vgim.data.corpus import AudioCorpus, load_corpus
from vgim.data.synthetic import synthesize_corpus
from vgim.report import REPORT_JSON, build_report, markdown_table_to_html
from vgim.train import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")


# ---------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> AudioCorpus:
    """Twelve synthetic words (2 speakers x 6 words) with all labels, segments and a train/test split."""
    root = tmp_path_factory.mktemp("corpus")
    manifest = synthesize_corpus(root / "corpus", n_speakers=2, words_per_speaker=6, progress=False)
    return load_corpus(manifest.parent, manifest=str(manifest), progress=False)


def _tiny_run(root: Path, variational: bool) -> Path:
    torch.set_num_threads(1)
    cfg = tiny_config(variational=variational, beta=0.01 if variational else 0.0, steps=10)
    run = root / ("vgim" if variational else "gim")
    batches = CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=0)
    train(cfg, run, batches=batches, progress=False)
    return run


@pytest.fixture(scope="module")
def vgim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny two-module V-GIM run (module 2 ends in a GRU), trained for 10 steps."""
    return _tiny_run(tmp_path_factory.mktemp("runs"), variational=True)


@pytest.fixture(scope="module")
def vgim_report(vgim_run: Path, tiny_corpus: AudioCorpus) -> Path:
    return build_report(vgim_run, corpus=tiny_corpus, decoder_steps=5, progress=False)


# ---------------------------------------------------------------------------------------------------------
# helpers


class _Links(HTMLParser):
    """Collects the local files a page refers to, and the attributes of ``#page-check``."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.audio: list[str] = []
        self.links: list[str] = []
        self.external: list[str] = []
        self.ids: list[str] = []
        self.check: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if a.get("id") == "page-check":
            self.check = a
        src, href = a.get("src"), a.get("href")
        if tag == "img" and src:
            self.images.append(src)
        if tag in ("audio", "source") and src:
            self.audio.append(src)
        if tag == "a" and href and not href.startswith("#"):
            self.links.append(href)
        if tag in ("link", "script") and (src or href) and not str(src or href).startswith("data:"):
            self.external.append(str(src or href))
        for value in (src, href):
            if value and "://" in value:
                self.external.append(value)


def _parse(html_text: str) -> _Links:
    parser = _Links()
    parser.feed(html_text)
    return parser


def _report(index: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((index.parent / REPORT_JSON).read_text())
    return data


def _notes(data: dict[str, Any], section: str) -> str:
    return " ".join(n["note"] for n in data["notes"] if n["section"] == section)


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) and yield its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _console_errors(stderr: str) -> list[str]:
    bad = ("uncaught", "failed to load resource", "error")
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln and any(b in ln.lower() for b in bad)]


def _page_status(dom: str) -> dict[str, Any]:
    check = _parse(dom).check
    assert check.get("data-status"), f"the page's check script did not finish: #page-check = {check}"
    status: dict[str, Any] = json.loads(str(check["data-status"]))
    return status


# ---------------------------------------------------------------------------------------------------------
# tests


def test_markdown_table_to_html_escapes_and_aligns() -> None:
    md = "| features | syllable | speaker |\n|---|---:|---:|\n| MFCC <x> | 90.3 | 100.0 |\n"
    out = markdown_table_to_html(md, caption="acc")
    assert "<caption>acc</caption>" in out and "MFCC &lt;x&gt;" in out
    assert '<th class="num">syllable</th>' in out and '<td class="num">90.3</td>' in out
    with pytest.raises(ValueError, match="Markdown table"):
        markdown_table_to_html("no table here")


def test_vgim_report_has_every_section_and_every_linked_file(vgim_report: Path) -> None:
    index = vgim_report
    assert index.name == "index.html" and index.parent.name == "report"
    page = _parse(index.read_text(encoding="utf-8"))
    data = _report(index)
    assert data["errors"] == [], data["errors"]
    assert page.external == [], f"the page must not load anything from elsewhere: {page.external}"
    for anchor in (
        "config",
        "training",
        "probes",
        "maps",
        "reconstructions",
        "traversals",
        "interpolation",
        "activations",
        "kernels",
        "diagnostics",
        "page-check",
    ):
        assert anchor in page.ids, anchor

    assert len(page.images) >= 15 and len(page.audio) >= 15
    for src in page.images + page.audio + page.links:
        assert not src.startswith("/") and ".." not in src, f"not a relative link inside the folder: {src}"
        path = index.parent / unquote(src)
        assert path.is_file() and path.stat().st_size > 0, src
        head = path.read_bytes()[:12]
        if src.endswith(".png"):
            assert head[:8] == PNG_MAGIC, src
        elif src.endswith(".wav"):
            assert head[:4] == b"RIFF" and head[8:12] == b"WAVE", src

    # the numbers behind the page
    tasks = {r["task"] for r in data["probes"]}
    assert tasks == {"syllable", "vowel", "consonant", "speaker"}
    assert {r["features"] for r in data["probes"]} >= {"MFCC", "random init m1", "tiny m1", "tiny m2"}
    assert set(data["decoders"]["metrics"]) == {"m1", "m2"} and data["decoders"]["steps"] == 5
    assert set(data["traversals"]["modules"]) == {"m1", "m2"}
    assert all(t["variational"] for t in data["traversals"]["modules"].values())
    assert set(data["kl"]) == {"m1", "m2", "threshold"} and len(data["kl"]["m1"]["per_dim"]) == 16
    assert set(data["mig"]) == {"m1", "m2"}
    assert len(data["interpolation"]["weights"]) == 5
    a, b = data["interpolation"]["a"], data["interpolation"]["b"]
    assert a.split()[0] != b.split()[0], (a, b)  # two different speakers
    assert "<table" in index.read_text() and "| features |" not in index.read_text()  # Markdown rendered


def test_gim_report_on_an_unlabelled_corpus_explains_what_is_missing(tmp_path: Path, tiny_corpus: AudioCorpus) -> None:
    """A GIM run (no KL) reported on a corpus with no speaker, phone labels, segments or split."""
    run = _tiny_run(tmp_path, variational=False)
    utts = [
        dataclasses.replace(u, labels={"word": u.labels["word"]}, segments=None, split="")
        for u in tiny_corpus.utterances
    ]
    bare = AudioCorpus(utts, list(tiny_corpus.waves), tiny_corpus.sample_rate)
    index = build_report(run, tmp_path / "out", corpus=bare, decoder_steps=3, n_examples=1, progress=False)
    data = _report(index)
    html_text = index.read_text()
    assert data["errors"] == [] and data["method"] == "GIM"
    # GIM: no KL, and the page says why
    assert "kl" not in data
    assert "No KL section" in _notes(data, "diagnostics") and "deterministic" in _notes(data, "diagnostics")
    assert "No KL section" in html_text
    assert not any(t["variational"] for t in data["traversals"]["modules"].values())  # swept in std over time
    # no labels: the sections that need them are notes
    assert "No probe table" in _notes(data, "probes") and "probes" not in data
    assert "No t-SNE maps" in _notes(data, "maps")
    assert "No MIG" in _notes(data, "diagnostics") and "mig" not in data
    assert "no 'speaker' labels" in _notes(data, "interpolation")
    assert "80/20" in data["corpus"]["split"]
    assert all(n["note"] in html.unescape(html_text) for n in data["notes"])
    # what needs no labels is there
    assert set(data["decoders"]["metrics"]) == {"m1", "m2"} and set(data["interpolation"]["modules"]) == {"m1", "m2"}
    page = _parse(html_text)
    for src in page.images + page.audio:
        assert (index.parent / unquote(src)).stat().st_size > 0


def test_report_renders_in_headless_chromium(vgim_report: Path, tmp_path: Path) -> None:
    binary = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium is not installed (/usr/bin/chromium; `apt-get install chromium`, done by run.sh test)")
    folder = vgim_report.parent
    page = _parse(vgim_report.read_text(encoding="utf-8"))
    # A copy with a missing image and a throwing script: proves that the check below can fail.
    broken = folder / "broken.html"
    broken.write_text(
        vgim_report.read_text().replace("<h1>", '<img src="missing.png"><script>undefinedFunction();</script><h1>', 1)
    )
    shot = tmp_path / "report.png"
    with _serve(folder) as url:
        dom = _chromium(binary, tmp_path / "profile", "--dump-dom", f"{url}/index.html")
        assert dom.returncode == 0, dom.stderr[-3000:]
        status = _page_status(dom.stdout)
        assert status["errors"] == [], status["errors"]
        assert status["done"] is True
        assert status["images"] == status["images_ok"] == len(page.images)
        assert status["audio"] == status["audio_ok"] == len(page.audio)
        assert _console_errors(dom.stderr) == []

        bad = _chromium(binary, tmp_path / "profile", "--dump-dom", f"{url}/broken.html")
        bad_status = _page_status(bad.stdout)
        problems = " ".join(bad_status["errors"])
        assert "undefinedFunction" in problems and "missing.png" in problems
        assert bad_status["images_ok"] == bad_status["images"] - 1
        assert _console_errors(bad.stderr), "the throwing script should show up in Chromium's console log"

        run = _chromium(binary, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000", f"{url}/")
        assert run.returncode == 0, run.stderr[-3000:]
        assert _console_errors(run.stderr) == []
    broken.unlink()
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == PNG_MAGIC


def test_a_report_without_a_corpus_uses_the_runs_own_embedded_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vgim.data.synthetic import default_corpus_dir
    from vgim.report.context import load_context

    monkeypatch.setenv("VGIM_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(variational=False, steps=2)
    cfg.data.root, cfg.data.synthetic_noise_snr_db = "synthetic", [5.0, 25.0]  # as the demo's runs
    batches = CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=0)
    train(cfg, tmp_path / "run", batches=batches, progress=False)
    ctx = load_context(
        tmp_path / "run", tmp_path / "out", None, decoder_steps=1, n_examples=1, progress=False, seed=0, say=print
    )
    noisy = default_corpus_dir(noise_snr_db=(5.0, 25.0))
    assert noisy != default_corpus_dir() and ctx.corpus_source == f"the embedded synthetic corpus ({noisy})"
    assert len(ctx.corpus) == 480
