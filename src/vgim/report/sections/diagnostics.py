"""The diagnostics section: per-dimension KL and active dimensions (variational modules only) and the MIG
per module."""

from __future__ import annotations

from vgim.report.context import ReportContext
from vgim.report.page import Section, table

__all__ = ["KL_THRESHOLD", "diagnostics_section"]

#: KL threshold (nats) below which a latent dimension counts as collapsed.
KL_THRESHOLD = 0.01


def diagnostics_section(ctx: ReportContext, s: Section) -> None:
    """KL per latent dimension (variational modules) and the MIG per module."""
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
    variational = [m for m in range(ctx.model.n_modules) if ctx.model.block(m).variational]
    deterministic = [m for m in range(ctx.model.n_modules) if m not in variational]
    if not variational:
        s.note(
            f"No KL section: this is a {ctx.method} run, so its modules are deterministic. They have no "
            "posterior q(z|x) and no KL term, hence no posterior collapse to measure.",
        )
    else:
        if deterministic:
            det = ", ".join(f"m{m + 1}" for m in deterministic)
            s.note(f"{det}: deterministic (no convolution, so no posterior): no KL.")
        kls = {f"m{m + 1}": latent_kl(ctx.model, ctx.test.waves, m, ctx.test.sample_rate) for m in variational}
        png = plot_latent_kl(kls, ctx.out / "latent_kl.png", threshold=KL_THRESHOLD, title=f"{ctx.name}: KL")
        rows = [
            (name, len(kl), active_dimensions(kl, KL_THRESHOLD), f"{kl.sum():.2f}", f"{kl.max():.3f}")
            for name, kl in kls.items()
        ]
        s.body.append(
            f"<p>KL(q(z|x) || N(0, I)) per latent dimension, averaged over the frames of the {len(ctx.test)} "
            f"test utterances. A dimension with KL below {KL_THRESHOLD:g} nats has collapsed onto the prior and "
            "carries no information.</p>"
        )
        s.body.append(
            table(
                ["module", "dimensions", f"active (KL > {KL_THRESHOLD:g})", "total KL (nats)", "max KL (nats)"],
                rows,
            )
        )
        s.body.append(s.img(png, "Per-dimension KL, sorted, log scale"))
        s.data["kl"] = {
            name: {"per_dim": kl, "active": active_dimensions(kl, KL_THRESHOLD), "total": float(kl.sum())}
            for name, kl in kls.items()
        } | {"threshold": KL_THRESHOLD}

    s.body.append("<h3>Disentanglement: mutual information gap (MIG)</h3>")
    if any(u.segments is None for u in ctx.test.utterances):
        s.note("No MIG: the test utterances lack syllable segments (MIG is computed per syllable).")
        return
    try:
        facts = syllable_factors(ctx.test)
    except ValueError as err:
        s.note(f"No MIG: {err}.")
        return
    constant = [f for f, v in facts.items() if len(set(v.tolist())) < 2]
    factors = {f: DEFAULT_FACTORS.get(f, f) for f in facts if f not in constant}
    lacking = [f for f in DEFAULT_FACTORS if f not in facts]
    if lacking:
        s.note(f"MIG without {', '.join(lacking)}: the corpus has no such label column.")
    if constant:
        s.note(f"MIG without {', '.join(constant)}: a single value in the test split.")
    if not factors:
        s.note("No MIG: no factor with at least two values.")
        return
    n_syll = len(next(iter(facts.values())))
    n_bins = int(min(20, max(2, n_syll // 10)))
    res = disentanglement(ctx.model, ctx.test, factors=factors, n_bins=n_bins)
    names = list(factors)
    s.body.append(
        f"<p>Each latent dimension (mu or z, mean-pooled per syllable; {n_syll} test syllables, {n_bins} "
        "equal-frequency bins) against each factor: normalised mutual information I(z_c; factor) / H(factor). "
        "The gap is the best dimension's value minus the second best; MIG is the mean gap (1: one dimension "
        "per factor, 0: every factor spread over many dimensions). Pitch is binned into 4 bins.</p>"
    )
    mig_rows = [
        [f"m{m + 1}", f"{r.mig:.3f}"] + [f"{g:.3f} (dim {int(d)})" for g, d in zip(r.gaps, r.best_dims, strict=True)]
        for m, r in res.items()
    ]
    s.body.append(table(["module", "MIG"] + [f"gap: {f} (best dim)" for f in names], mig_rows))
    for m, r in res.items():
        png = plot_mi_matrix(r, ctx.out / f"mi_matrix_m{m + 1}.png", title=f"m{m + 1}: MIG {r.mig:.3f}")
        s.body.append(s.img(png, f"m{m + 1}: normalised MI of every latent dimension with every factor"))
    s.data["mig"] = {f"m{m + 1}": r.to_dict() for m, r in res.items()}
