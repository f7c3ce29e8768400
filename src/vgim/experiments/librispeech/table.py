"""``results.md`` of the LibriSpeech recipe: the table with the papers' numbers beside ours, header and footer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vgim.config import Config
from vgim.evaluate.probes import ProbeResult
from vgim.experiments.librispeech.inputs import Split
from vgim.experiments.librispeech.probing import TASKS, Task
from vgim.experiments.librispeech.protocol import ProbeSettings

__all__ = [
    "DISPLAY",
    "PAPER_REPORTED",
    "PAPER_SOURCES",
    "protocol_line",
    "results_footer",
    "results_header",
    "results_table",
]

#: Linear-probe accuracy (%) on LibriSpeech train-clean-100 reported by the papers: (phone, speaker).
PAPER_REPORTED: dict[str, tuple[float, float]] = {"MFCC": (39.7, 17.6), "CPC": (64.6, 97.4), "GIM": (62.5, 99.4)}
PAPER_SOURCES = (
    "van den Oord et al. 2018, Representation Learning with Contrastive Predictive Coding (MFCC, CPC); "
    "Loewe et al. 2019, Putting An End to End-to-End: Gradient-Isolated Learning of Representations (GIM)"
)

#: Row names of the presets whose numbers the papers report.
DISPLAY = {
    "cpc": "CPC",
    "gim": "GIM",
    "vgim": "V-GIM",
    "cpc-thesis-improved": "CPC (improved)",
    "gim-thesis-improved": "GIM (improved)",
    "vgim-thesis-improved": "V-GIM (improved)",
    "cpc-speech": "CPC (speech)",
    "gim-speech": "GIM (speech)",
    "vgim-speech": "V-GIM (speech)",
}


def _row_order(results: Sequence[ProbeResult]) -> list[str]:
    return list(dict.fromkeys(r.features for r in results))


def _paper_key(row: str, last_rows: dict[str, str]) -> str | None:
    """The papers' row for our row: MFCC, and the last module of each model the papers report."""
    if row == "MFCC":
        return row
    return next((name for name, last in last_rows.items() if row == last and name in PAPER_REPORTED), None)


def results_table(results: Sequence[ProbeResult], last_rows: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """The Markdown table (percent, the papers' numbers beside ours) and its rows for ``results.json``."""
    cells = {(r.features, r.task): r.accuracy * 100 for r in results}
    lines = [
        "| features | phone | speaker | paper phone | paper speaker |",
        "|---|---:|---:|---:|---:|",
    ]
    rows: list[dict[str, Any]] = []
    for name in _row_order(results):
        key = _paper_key(name, last_rows)
        paper = PAPER_REPORTED.get(key) if key else None
        ours = [cells.get((name, t)) for t in TASKS]
        fmt = ["-" if v is None else f"{v:.1f}" for v in ours]
        ref = ["-", "-"] if paper is None else [f"{v:.1f}" for v in paper]
        lines.append(f"| {name} | {' | '.join(fmt)} | {' | '.join(ref)} |")
        rows.append(
            {
                "features": name,
                "phone": ours[0],
                "speaker": ours[1],
                "paper_phone": None if paper is None else paper[0],
                "paper_speaker": None if paper is None else paper[1],
            }
        )
    return "\n".join(lines) + "\n", rows


def results_header(
    train: Split,
    test: Split,
    configs: dict[str, Config],
    quick: bool,
    settings: ProbeSettings,
    chance: dict[Task, float],
    sup_steps: int | None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The paragraphs above the table: data (and the extra unlabelled training audio), training steps and probe
    settings."""
    steps = ", ".join(f"{DISPLAY.get(p, p)} {c.train.steps}" for p, c in configs.items())
    lines = [
        "# LibriSpeech: linear probes of frozen features (accuracy, %)",
        "",
        ("**Quick smoke test: a few steps on a few utterances; not comparable with the papers.**\n" if quick else "")
        + f"Training and probe-training utterances: {len(train.corpus)} (train split); test utterances: "
        f"{len(test.corpus)} (test split); {len(set(train.speakers) | set(test.speakers))} speakers. "
        + (
            f"The presets also trained on {extra['files']} unlabelled files ({extra['minutes']:.1f} min) of "
            f"`{extra['source']}` (not probed; {extra['left_out_split_utterances']} utterances of the split files "
            "left out of them). "
            if extra
            else ""
        )
        + f"Training steps: {steps}"
        + (f"; supervised baselines {sup_steps} each" if sup_steps is not None else "")
        + ".",
        "",
        protocol_line(settings),
        "",
        _phone_line(train, test, settings, chance["phone"]) + " " + _speaker_line(settings, chance["speaker"]),
        "",
        "Rows `<model> m<k>` are module k; the papers' numbers stand beside MFCC and the last module of CPC "
        "and GIM. Supervised rows: the phone column comes from an encoder trained on phones, the speaker "
        "column from one trained on speakers (same architecture as random init).",
    ]
    return "\n".join(lines) + "\n"


def protocol_line(settings: ProbeSettings) -> str:
    """One line naming the probe protocol and where it comes from."""
    name = settings.protocol.rstrip("+")
    origin = {
        "gim": "the GIM paper's code (`logistic_regression_{phones,speaker}.py` of Loewe et al. 2019)",
        "sampled": "the recipe's earlier choices (sampled frames, lbfgs speakers)",
    }.get(name, "custom settings")
    changed = " with some settings changed" if settings.protocol.endswith("+") else ""
    return f"Probe protocol: `{settings.protocol}`, {origin}{changed}; label pairing `{settings.pairing}` " + (
        "(the last len(labels) module outputs of each utterance, right-aligned)."
        if settings.pairing == "gim"
        else "(module frames by their centres in the 10 ms label frames)."
    )


def _phone_line(train: Split, test: Split, settings: ProbeSettings, chance: float) -> str:
    batch = "one utterance per step" if settings.batch_size is None else f"batch {settings.batch_size}"
    n_train, n_test = (sum(int(p.shape[0]) for p in s.phones) for s in (train, test))
    sample = "all" if (train.n_frames, test.n_frames) == (n_train, n_test) else "a uniform sample"
    return (
        f"Phone: linear classifier per 10 ms label frame ({settings.epochs} epochs of Adam, lr {settings.lr:g}, "
        f"{batch}, {'standardised' if settings.standardise else 'raw'} features; module frames matched to label "
        f"frames by `{settings.align}`), trained on {train.n_frames} of {n_train} training frames and scored on "
        f"{test.n_frames} of {n_test} test frames ({sample}); majority class {chance * 100:.1f}%."
    )


def _speaker_line(settings: ProbeSettings, chance: float) -> str:
    if math.isnan(chance):  # NaN: the speaker task did not run
        return "Speaker: not probed (the training split has one speaker)."
    unit = "utterance" if settings.speaker_window is None else f"{settings.speaker_window}-sample window"
    how = (
        "logistic regression (lbfgs)"
        if settings.speaker_classifier == "lbfgs"
        else f"linear classifier, {settings.speaker_epochs} epochs of Adam, lr {settings.speaker_lr:g}, batch "
        f"{settings.speaker_batch_size}"
    )
    return f"Speaker: {how} on the {settings.speaker_pool} of each {unit}; majority class {chance * 100:.1f}%."


def results_footer() -> str:
    """The line below the table: the papers cited."""
    return f"Papers: {PAPER_SOURCES}. Produced by `vgim experiment librispeech`."
