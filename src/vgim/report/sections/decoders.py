"""The reconstruction section: per-module decoders (trained for the report, or the run's own finished
``RUN/decoders``) with audio players for the original and every module's reconstruction.

It sets :attr:`ReportContext.decoders`, which the traversal and interpolation sections use."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from vgim.report.context import ReportContext
from vgim.report.page import Section, esc, table

__all__ = ["decoders_section"]


def decoders_section(ctx: ReportContext, s: Section) -> None:
    """Per-module decoders (reused or trained, into :attr:`ReportContext.decoders`) and reconstructions."""
    from vgim.audio import write_audio
    from vgim.interpret.decoders import (
        finished_decoders,
        load_decoders,
        log_spectral_distance,
        plot_reconstruction,
        reconstruct,
        train_decoders,
    )

    n = ctx.model.n_modules
    existing = finished_decoders(ctx.run_dir, n)
    if existing is not None:
        ctx.decoders = load_decoders(existing)
        meta = json.loads((existing / "metrics.json").read_text())
        metrics = {int(d["module"]): d for d in meta["modules"]}
        listening = meta.get("intelligibility")
        kind = str(meta.get("kind", "waveform"))
        steps = int(meta["steps"])
        source = f"the run's own finished decoders ({existing}, {steps} steps)"
    else:
        res = train_decoders(
            ctx.run_dir,
            corpus=ctx.corpus,
            steps=ctx.decoder_steps,
            out_dir=ctx.out / "decoders",
            progress=ctx.progress,
            seed=ctx.seed,
            n_examples=0,
        )
        ctx.decoders = load_decoders(res.out_dir)
        metrics = {m: dict(v) for m, v in res.metrics.items()}
        listening = res.intelligibility
        kind = "spectrogram"
        steps = res.step
        source = (
            f"decoders trained for this report ({steps} steps, batch 8, in {res.seconds:.0f} s; saved in "
            "decoders/). Train longer with `vgim decode RUN` (2000 steps) into RUN/decoders, which the report "
            "then reuses"
        )
    how = {
        "spectrogram": "a convolutional decoder predicts the log-magnitude spectrogram from the module's frames "
        "and Griffin-Lim estimates the phase",
        "waveform": "a transposed-convolution decoder mirroring the encoder's layers writes the waveform",
        "thesis": "a transposed-convolution decoder mirroring the encoder's layers writes the waveform, trained "
        "on the thesis's log10-mel MSE",
    }.get(kind, kind)
    s.body.append(
        f"<p>Each module's representation c is decoded back to sound ({esc(how)}); the encoder stays frozen. "
        f"Source: {esc(source)}.</p>"
    )
    rows = [
        (
            f"m{m + 1}",
            f"{v['mse']:.2e}",
            f"{v.get('mse_silence', math.nan):.2e}",
            f"{v['snr_db']:.1f}",
            f"{v['lsd_db']:.1f}",
            f"{v.get('lsd_active_db', math.nan):.1f}",
            f"{v.get('lsd_silence_db', math.nan):.1f}",
            f"{v.get('log_mel_db', math.nan):.1f}",
            f"{v.get('n_files', math.nan):.0f}",
        )
        for m, v in sorted(metrics.items())
    ]
    s.body.append(
        table(
            [
                "module",
                "waveform MSE",
                "MSE of silence",
                "SNR (dB)",
                "log-spectral distance (dB)",
                "LSD, active frames (dB)",
                "LSD of silence (dB)",
                "log-mel distance (dB)",
                "files",
            ],
            rows,
            caption=(
                "Reconstruction of held-out audio (lower MSE / distances and higher SNR are better; a spectrogram "
                "decoder's phase is estimated, so its waveform MSE and SNR stay near silence's by design)"
            ),
        )
    )
    if listening is not None:
        from vgim.interpret.intelligibility import Intelligibility

        tab = Intelligibility.from_dict(listening)
        s.body.append(
            table(
                tab.header(),
                tab.rows(),
                caption=(
                    f"Intelligibility: an MFCC linear probe fitted on the original training audio ({tab.n_train} "
                    f"files), scored on the {tab.n_test} held-out files as decoded from each module, beside the "
                    "original (what a perfect decoder would give), silence (chance) and, for spectrogram decoders, "
                    "the original's own magnitudes through Griffin-Lim (what the phase estimate alone costs)"
                ),
            )
        )
    examples: list[dict[str, Any]] = []
    sr = ctx.corpus.sample_rate
    for k, ex in enumerate(ctx.examples):
        rec = reconstruct(ctx.model, ctx.decoders, ex.wave)
        orig = ctx.out / "audio" / f"example{k}_original.wav"
        write_audio(orig, ex.wave, sr)
        players = [s.audio(orig, "original")]
        scores: dict[int, dict[str, float]] = {}
        for m, y in rec.items():
            path = ctx.out / "audio" / f"example{k}_m{m + 1}.wav"
            write_audio(path, y, sr)
            scores[m] = {"mse": float(np.mean((y - ex.wave) ** 2)), "lsd_db": log_spectral_distance(ex.wave, y)}
            players.append(s.audio(path, f"m{m + 1} (MSE {scores[m]['mse']:.1e}, LSD {scores[m]['lsd_db']:.1f} dB)"))
        png = plot_reconstruction(
            ex.wave,
            rec,
            ctx.out / f"reconstruction_{k}.png",
            sample_rate=sr,
            title=f"{ex.label} decoded from each module",
            scores=scores,
        )
        s.body.append(f"<h3>Example {k + 1}: {esc(ex.label)}</h3>")
        s.body.append('<div class="players">' + "".join(players) + "</div>")
        s.body.append(
            s.img(png, "Waveform (left) and log-power spectrogram (right) of the original and of each module")
        )
        examples.append(
            {"label": ex.label, "path": ex.utterance.path, "scores": {f"m{m + 1}": scores[m] for m in scores}}
        )
    s.data["decoders"] = {
        "source": "reused" if existing is not None else "trained",
        "steps": steps,
        "kind": kind,
        "metrics": {f"m{m + 1}": v for m, v in sorted(metrics.items())},
        "intelligibility": listening,
        "examples": examples,
    }
