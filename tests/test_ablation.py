from __future__ import annotations

from pathlib import Path

import pytest

from vgim.experiments.ablation import ABLATION, Variant, _train_variant, variant_config


def test_variant_config_applies_layer_changes() -> None:
    v = Variant(
        "wide, normed, convs only", "gim-small", ("objective.n_predictions=3",), width=32, norm="layer", modules=(3, 2)
    )
    cfg = variant_config(v, seed=3, steps=7)
    assert cfg.model.modules == [3, 2] and len(cfg.model.layers) == 5
    assert all(ly.kind == "conv" and ly.norm == "layer" and ly.channels == 32 for ly in cfg.model.layers)
    assert cfg.objective.n_predictions == 3
    assert (cfg.train.seed, cfg.train.steps, cfg.train.threads) == (3, 7, 1)
    thesis = variant_config(ABLATION[0])
    assert [ly.norm for ly in thesis.model.layers] == ["none"] * len(thesis.model.layers)
    assert thesis.train.steps == 1500 and thesis.objective.beta == 0.0
    assert len({variant_config(v).name for v in ABLATION}) == len(ABLATION)  # one run folder each


def test_a_run_with_another_config_is_not_reused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    variant_config(ABLATION[1]).save(run / "config.json")
    with pytest.raises(ValueError, match="another config"):
        _train_variant(variant_config(ABLATION[0]), run, corpus=None)  # type: ignore[arg-type]
