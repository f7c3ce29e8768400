"""The probe section: linear probes of every module with the MFCC and random-init baselines."""

from __future__ import annotations

from vgim.report.context import ReportContext
from vgim.report.page import Section, esc, markdown_table_to_html

__all__ = ["probes_section"]


def probes_section(ctx: ReportContext, s: Section) -> None:
    """Linear probes of every module and of the baselines, on the corpus's labels."""
    from vgim.evaluate.evaluation import EvaluationSplit, evaluate_models
    from vgim.evaluate.probes import DEFAULT_TASKS, available_tasks
    from vgim.evaluate.tables import results_table, results_to_json

    utts = ctx.train.utterances + ctx.test.utterances
    usable = available_tasks(DEFAULT_TASKS, [u.labels for u in utts], [u.segments for u in utts])
    for t in DEFAULT_TASKS:
        if t not in usable:
            need = f"the label column '{t.key}'" + (" and syllable segments" if t.level == "segment" else "")
            s.note(f"No {t.name} probe: it needs {need} on every utterance.")
    if not usable:
        s.note("No probe table: the corpus has none of the labels the probes need.")
        return
    split = EvaluationSplit(ctx.train, ctx.test)
    models = {ctx.name: ctx.model}
    try:
        results = evaluate_models(models, split, tasks=usable, seed=ctx.seed)
    except ValueError:
        results = []
        for t in usable:  # e.g. one class only in a tiny training split: keep the tasks that work
            try:
                results += evaluate_models(models, split, tasks=[t], seed=ctx.seed)
            except ValueError as err:
                s.note(f"No {t.name} probe: {err}")
    if not results:
        return
    s.body.append(
        f"<p>Linear probes (standardised logistic regression) trained on the frozen features of "
        f"{len(ctx.train)} training utterances and scored on {len(ctx.test)} test utterances "
        f"({esc(ctx.split_how)}). Syllable, vowel and consonant are mean-pooled per syllable, speaker "
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
    s.data["probes"] = results_to_json(results)
