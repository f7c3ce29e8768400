"""The t-SNE section: maps of every module's pooled representation."""

from __future__ import annotations

from vgim.report.context import ReportContext
from vgim.report.page import Section

__all__ = ["maps_section"]


def maps_section(ctx: ReportContext, s: Section) -> None:
    """t-SNE maps of every module, coloured by every label the test utterances have."""
    from vgim.evaluate.evaluation import corpus_features
    from vgim.evaluate.probes import DEFAULT_TASKS, available_tasks
    from vgim.interpret.maps import draw_maps

    utts = ctx.test.utterances
    usable = available_tasks(DEFAULT_TASKS, [u.labels for u in utts], [u.segments for u in utts])
    if not usable:
        s.note("No t-SNE maps: the test utterances have none of the labels to colour the maps by.")
        return
    if len(ctx.test) < 3:
        s.note(f"No t-SNE maps: only {len(ctx.test)} test utterance(s).")
        return
    missing = [t.name for t in DEFAULT_TASKS if t not in usable]
    if missing:
        s.note(f"No map coloured by {', '.join(missing)}: the corpus lacks those labels (or segments).")
    feats = corpus_features(ctx.model, ctx.test.waves, ctx.test.sample_rate)
    files = draw_maps(ctx.model, ctx.test, ctx.out / "maps", tasks=usable, seed=ctx.seed, features=feats)
    s.body.append(
        f"<p>t-SNE of every module's representation c, mean-pooled per syllable (syllable, vowel, consonant "
        f"share one map) or per utterance (speaker), on the {len(ctx.test)} test utterances. Each dimension "
        "is standardised first; distances between far-apart clusters mean little in t-SNE.</p>"
    )
    s.data["maps"] = [str(p.relative_to(ctx.out)) for p in files]
    for m in range(ctx.model.n_modules):
        mine = [p for p in files if p.name.startswith(f"m{m + 1}_")]
        s.body.append(f"<h3>Module m{m + 1}</h3><div class='grid'>")
        s.body.extend(s.img(p, f"m{m + 1}, coloured by {p.stem.split('_', 1)[1]}") for p in mine)
        s.body.append("</div>")
