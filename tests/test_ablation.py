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


def test_validation_split_holds_out_every_fifth_training_word() -> None:
    import numpy as np

    from vgim.data.corpus import AudioCorpus, Utterance
    from vgim.evaluate.evaluation import validation_split

    utts = [Utterance(f"w{i}.wav", {}, None, "train") for i in range(12)]
    corpus = AudioCorpus(utts, [np.full(100, float(i), dtype=np.float32) for i in range(12)], 16000)
    split = validation_split(corpus)
    assert [u.path for u in split.test.utterances] == ["w0.wav", "w5.wav", "w10.wav"]
    assert [u.path for u in split.train.utterances] == [f"w{i}.wav" for i in range(12) if i % 5]
    assert [float(w[0]) for w in split.train.waves] == [float(i) for i in range(12) if i % 5]  # waves stay aligned
    with pytest.raises(ValueError, match="cannot hold out every 5-th of 3 utterances"):
        validation_split(AudioCorpus(utts[:3], corpus.waves[:3], 16000))
