"""The traversal and interpolation sections: latent traversals of every module (prior standard deviations
for a variational module, the dimension's standard deviation over time for a deterministic one) and an
interpolation between two utterances of different speakers, with audio."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vgim.report.context import Example, ReportContext
from vgim.report.page import Section, esc

__all__ = [
    "TRAVERSAL_STEPS",
    "TRAVERSAL_PLOT_DIMS",
    "TRAVERSAL_AUDIO_DIMS",
    "INTERPOLATION_STEPS",
    "SWEEP_GAP_SECONDS",
    "traversal_section",
    "interpolation_section",
]

#: Points of each latent traversal (offsets -2.68 .. +2.68).
TRAVERSAL_STEPS = 7

#: Dimensions per module drawn in the traversal figure / given an audio sweep.
TRAVERSAL_PLOT_DIMS = 6
TRAVERSAL_AUDIO_DIMS = 3

#: Points of the interpolation between two utterances.
INTERPOLATION_STEPS = 5

#: Silence between the steps of a traversal sweep WAV, in seconds.
SWEEP_GAP_SECONDS = 0.2


def traversal_section(ctx: ReportContext, s: Section) -> None:
    """Latent traversals of example 1 in every module that has a decoder, with audio."""
    from vgim.audio import write_audio
    from vgim.interpret.traversal import plot_traversal, traverse, write_traversal_audio

    if not ctx.decoders:
        s.note("No traversals: there are no decoders (see the reconstruction section).")
        return
    ex = ctx.examples[0]
    sr = ctx.corpus.sample_rate
    s.body.append(
        f"<p>On example 1 ({esc(ex.label)}), one latent dimension of a module is shifted by the same offset at "
        "every frame while the others keep their values; the rest of the module (its GRU) runs on the modified "
        "latent and the module's decoder turns it into audio. Variational modules are swept in prior standard "
        "deviations around the posterior mean mu; deterministic modules around z, in units of that dimension's "
        "standard deviation over time on this utterance. Dimensions are ranked by effect: the log-spectral "
        "distance between the two ends of the sweep. Each sweep below plays the offsets from lowest to highest "
        f"with {SWEEP_GAP_SECONDS:g} s of silence in between."
        + (
            " Here the sweeps start from the zero vector instead (the V-GIM thesis's traversal): every other "
            "dimension is 0 at every frame, and the example only sets the length."
            if ctx.traversal_origin == "zero"
            else ""
        )
        + "</p>"
    )
    result: dict[str, Any] = {}
    gap = np.zeros(int(SWEEP_GAP_SECONDS * sr), dtype=np.float32)
    for m in sorted(ctx.decoders):
        tr = traverse(
            ctx.model,
            ctx.decoders[m],
            ex.wave,
            m,
            n_steps=TRAVERSAL_STEPS,
            origin=ctx.traversal_origin,
            audio_dims=max(TRAVERSAL_PLOT_DIMS, TRAVERSAL_AUDIO_DIMS),
        )
        png = plot_traversal(tr, ctx.out / f"traversal_m{m + 1}.png", n_dims=TRAVERSAL_PLOT_DIMS)
        top = min(TRAVERSAL_AUDIO_DIMS, len(tr.dims))
        folder = ctx.out / "audio" / f"traversal_m{m + 1}"
        write_traversal_audio(dataclasses.replace(tr, dims=tr.dims[:top], audio=tr.audio[:top]), folder)
        unit = "prior std" if tr.variational else "std over time"
        around = "from the zero vector" if tr.origin == "zero" else ("around mu" if tr.variational else "around z")
        kind = f"{'variational' if tr.variational else 'deterministic'}: sweep {around}"
        s.body.append(f"<h3>Module m{m + 1} ({kind}, offsets in {unit})</h3>")
        s.body.append(
            '<div class="players">'
            + s.audio(folder / "original.wav", "original")
            + s.audio(folder / "reconstruction.wav", f"m{m + 1} reconstruction (no offset)")
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
                links.append(f'<a href="{s.rel(step_wav)}">{float(v):+.2f}</a>')
            steps = " ".join(links)
            kl = "-" if np.isnan(tr.kl[k]) else f"{tr.kl[k]:.3f}"
            rows.append(
                f"<tr><td>{d}</td><td class='num'>{tr.effect_db[k]:.2f}</td><td class='num'>{kl}</td>"
                f"<td class='num'>{tr.scale[k]:.3g}</td>"
                f'<td><audio controls preload="metadata" src="{s.rel(sweep_path)}"></audio></td>'
                f"<td class='small'>{steps}</td></tr>"
            )
        s.body.append(
            "<table><caption>The "
            f"{top} dimensions with the largest effect (all {len(tr.dims)} are ranked in report.json)</caption>"
            "<thead><tr><th>dim</th><th class='num'>effect (dB)</th><th class='num'>KL (nats/frame)</th>"
            f"<th class='num'>unit ({esc(unit)})</th><th>sweep, low to high</th><th>single steps (WAV)</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
        s.body.append(
            s.img(
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
    s.data["traversals"] = {"utterance": ex.utterance.path, "modules": result}


def interpolation_section(ctx: ReportContext, s: Section) -> None:
    """Interpolation between example 1 and an utterance of another speaker, with audio."""
    from vgim.audio import write_audio
    from vgim.interpret.traversal import interpolate, plot_interpolation

    if not ctx.decoders:
        s.note("No interpolation: there are no decoders (see the reconstruction section).")
        return
    a = ctx.examples[0]
    key = ctx.speaker_key
    spk_a = a.utterance.labels.get(key)
    word_a = a.utterance.labels.get("word")
    partner: Example | None = None
    if spk_a is not None:
        for corpus in (ctx.test, ctx.train):
            for prefer_other_word in (True, False):
                for i, u in enumerate(corpus.utterances):
                    if partner is None and u.labels.get(key) not in (None, spk_a):
                        if not prefer_other_word or u.labels.get("word") != word_a:
                            partner = ctx.example(corpus, i)
    if partner is None:
        others = [i for i in range(len(ctx.test)) if i != a.index]
        why = f"the corpus has no '{key}' labels" if spk_a is None else f"every utterance is spoken by {spk_a}"
        if not others:
            s.note(f"No interpolation: {why} and there is no second test utterance.")
            return
        s.note(f"Not between two speakers: {why}; interpolating between two different utterances instead.")
        partner = ctx.example(ctx.test, others[0])
    b = partner
    sr = ctx.corpus.sample_rate
    s.body.append(
        f"<p>A = {esc(a.label)}, B = {esc(b.label)}. Both utterances are encoded, their latents (mu for a "
        "variational module, z otherwise) are cropped to the shorter one's frames and mixed as "
        "(1 - a)·A + a·B, then the rest of the module runs and its decoder renders the audio.</p>"
    )
    result: dict[str, Any] = {"a": a.label, "b": b.label, "weights": [], "modules": []}
    for m in sorted(ctx.decoders):
        frames = interpolate(ctx.model, ctx.decoders[m], a.wave, b.wave, m, n_steps=INTERPOLATION_STEPS)
        png = plot_interpolation(frames, ctx.out / f"interpolation_m{m + 1}.png", sample_rate=sr, module=m)
        players = []
        weights = []
        for j, wave in enumerate(frames):
            w = j / (len(frames) - 1)
            weights.append(w)
            path = ctx.out / "audio" / f"interpolation_m{m + 1}_step{j}.wav"
            write_audio(path, wave, sr)
            label = "A" if j == 0 else "B" if j == len(frames) - 1 else f"{1 - w:.2f}·A + {w:.2f}·B"
            players.append(s.audio(path, label))
        s.body.append(f"<h3>Module m{m + 1}</h3>")
        s.body.append('<div class="players">' + "".join(players) + "</div>")
        s.body.append(s.img(png, f"Log-power spectrograms along the line from A to B in m{m + 1}'s latent space"))
        result["weights"] = weights
        result["modules"].append(f"m{m + 1}")
    s.data["interpolation"] = result
