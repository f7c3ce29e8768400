from __future__ import annotations

import json
from pathlib import Path

import pytest

from vgim.cli import main
from vgim.data.thesis import find_thesis_corpus
from vgim.evaluate.probes import ProbeResult
from vgim.experiments.thesis import aggregate

CORPUS = find_thesis_corpus()


def _result(features: str, task: str, acc: float) -> ProbeResult:
    return ProbeResult(task, features, acc, acc, 10, 10, 3, 0.3)


def test_aggregate_mean_and_std_over_seeds() -> None:
    rows = aggregate({0: [_result("GIM m1", "syllable", 0.5)], 1: [_result("GIM m1", "syllable", 0.7)]})
    assert len(rows) == 1
    assert rows[0]["accuracy_mean"] == pytest.approx(60.0)
    assert rows[0]["accuracy_std"] == pytest.approx(14.1421, rel=1e-3)  # sample std of 50 and 70
    assert rows[0]["n_seeds"] == 2


@pytest.mark.slow
@pytest.mark.skipif(CORPUS is None, reason="thesis corpus not found (../shared/datasets/...; set VGIM_THESIS_CORPUS)")
def test_quick_thesis_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "thesis"
    assert main(["experiment", "thesis", "--quick", "--steps", "30", "--out", str(out), "--quiet"]) == 0
    table = (out / "results.md").read_text()
    for row in ["MFCC", "GIM m1", "GIM m2", "V-GIM m1", "V-GIM m2", "random init m1", "supervised m2"]:
        assert f"| {row} |" in table
    data = json.loads((out / "results.json").read_text())
    tasks = {r["task"] for r in data["summary"]}
    assert tasks == {"syllable", "vowel", "consonant"}
    syllable = [r for r in data["summary"] if r["task"] == "syllable"]
    assert all(0 <= r["accuracy_mean"] <= 100 for r in syllable)
    assert all(r["n_test"] > 400 for r in syllable)  # ~171 held-out words x 3 syllables
    mfcc = next(r for r in syllable if r["features"] == "MFCC")
    assert mfcc["accuracy_mean"] > 100 / 9 * 2  # far above chance (9 classes): the pipeline really probes
    # the default --protocol both: the thesis protocol on the same models, syllables padded to 8800 samples
    assert data["protocol"] == "both" and "## thesis protocol" in table and "side by side" in table
    proto = data["thesis_protocol"]
    assert proto["pad_samples"] == 8800
    thesis_syllable = {r["features"]: r for r in proto["summary"] if r["task"] == "syllable"}
    assert {"MFCC", "GIM m1", "V-GIM m2", "random init m1", "supervised m2"} <= set(thesis_syllable)
    assert all(r["n_test"] == syllable[0]["n_test"] for r in proto["summary"])  # the same test syllables
    assert thesis_syllable["MFCC"]["accuracy_mean"] > 100 / 9 * 2
    assert (out / "label_subsets.png").exists() and (out / "tsne" / "tsne_v-gim-m1.png").exists()
    # again without the baselines: the finished runs are reused (their weights stay), no baseline rows
    weights = (out / "gim-seed0" / "export" / "model.safetensors").read_bytes()
    args = ["experiment", "thesis", "--quick", "--steps", "30", "--out", str(out), "--quiet", "--no-baselines"]
    args += ["--protocol", "vgim"]
    assert main(args) == 0
    table = (out / "results.md").read_text()
    assert "| GIM m1 |" in table and "| MFCC |" in table
    assert "random init" not in table and "supervised" not in table
    assert (out / "gim-seed0" / "export" / "model.safetensors").read_bytes() == weights


def test_a_run_folder_of_another_config_is_refused_and_thread_counts_do_not_count(tmp_path: Path) -> None:
    from vgim.config import load_config
    from vgim.experiments.thesis import _train_run

    run = tmp_path / "gim-seed0"
    run.mkdir()
    load_config("gim-thesis", ["train.seed=0", "train.threads=1"]).save(run / "config.json")
    (run / "export").mkdir()
    (run / "export" / "model.safetensors").write_bytes(b"")  # "finished"
    with pytest.raises(ValueError, match="another config"):
        _train_run("gim-thesis", run, None, ["train.seed=1"], False)  # type: ignore[arg-type]
    _train_run("gim-thesis", run, None, ["train.seed=0"], False)  # type: ignore[arg-type]  # reused: threads differ only
