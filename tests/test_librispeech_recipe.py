"""The LibriSpeech recipe (``vgim experiment librispeech``) end to end on the synthetic fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vgim.cli import main
from vgim.data.librispeech_fixture import LibriSpeechFixture, make_librispeech_fixture
from vgim.experiments.librispeech import PAPER_REPORTED, run_librispeech_experiment
from vgim.experiments.librispeech.inputs import _sample_frames
from vgim.experiments.librispeech.recipe import _spread

#: A two-module encoder with 8 channels (module 1: hop 20; module 2: hop 40 with a GRU), short crops.
TINY = [
    'model.layers=[{kind="conv",channels=8,kernel=10,stride=5,padding=2},'
    '{kind="conv",channels=8,kernel=8,stride=4,padding=2},'
    '{kind="conv",channels=8,kernel=4,stride=2,padding=1},{kind="gru",channels=8}]',
    "model.modules=[2,2]",
    "objective.n_predictions=3",
    "data.crop_samples=4800",
    "train.batch_size=4",
    "train.log_every=5",
    "train.checkpoint_every=10",
    "train.threads=1",
]
STEPS = 20
MODELS = ("CPC", "GIM", "V-GIM", "random init", "supervised", "greedy supervised")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> LibriSpeechFixture:
    return make_librispeech_fixture(tmp_path_factory.mktemp("librispeech"))


def _paths(fx: LibriSpeechFixture) -> dict[str, Any]:
    return {"alignments": fx["alignments"], "train_split": fx["train_split"], "test_split": fx["test_split"]}


def test_recipe_end_to_end_then_cli_reuses_the_runs(
    fixture: LibriSpeechFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ls"
    result = run_librispeech_experiment(
        fixture["root"],
        **_paths(fixture),
        out=out,
        steps=STEPS,
        overrides=TINY,
        probe_epochs=10,
        probe_batch_size=128,
        probe_lr=1e-2,
        progress=False,
    )
    assert result.results_md == out / "results.md" and result.results_md.exists() and result.results_json.exists()
    # the tables are also kept per protocol (here gim with changed settings), so a run with another --protocol
    # does not replace them
    assert (out / "results-gim-custom.md").read_text() == result.results_md.read_text()
    assert (out / "results-gim-custom.json").read_text() == result.results_json.read_text()
    rows = ["MFCC"] + [f"{name} m{m}" for name in MODELS for m in (1, 2)]
    by_row = {(r.features, r.task): r for r in result.results}
    for row in rows:
        assert f"| {row} |" in result.table
        for task in ("phone", "speaker"):
            r = by_row[(row, task)]
            assert 0.0 <= r.accuracy <= 1.0 and 0.0 <= r.chance <= 1.0
    assert len(result.results) == 2 * len(rows)
    # the phone probe sees every 10 ms label frame of the fixture (900 train, 300 test) and 3 test utterances
    assert {(r.n_train, r.n_test) for r in result.results if r.task == "phone"} == {(900, 300)}
    assert {(r.n_train, r.n_test) for r in result.results if r.task == "speaker"} == {(9, 3)}
    mfcc = by_row[("MFCC", "phone")]
    assert mfcc.accuracy > mfcc.chance + 0.3  # the fixture's phones are separable from MFCCs
    # the papers' numbers stand beside MFCC and the last module of CPC and GIM, and nowhere else
    cpc, gim = PAPER_REPORTED["CPC"], PAPER_REPORTED["GIM"]
    assert f"| {cpc[0]:.1f} | {cpc[1]:.1f} |" in next(ln for ln in result.table.splitlines() if "| CPC m2 |" in ln)
    assert f"| {gim[0]:.1f} | {gim[1]:.1f} |" in next(ln for ln in result.table.splitlines() if "| GIM m2 |" in ln)
    assert next(ln for ln in result.table.splitlines() if "| CPC m1 |" in ln).endswith("| - | - |")
    data = json.loads(result.results_json.read_text())
    assert len(data["table"]) == len(rows) and data["data"]["train_utterances"] == 9
    # the protocol is the GIM code's with the phone schedule changed, and says so in both files
    probe = data["settings"]["probe"]
    assert probe["protocol"] == "gim+" and probe["pairing"] == "gim" and probe["batch_size"] == 128
    assert (probe["speaker_window"], probe["speaker_epochs"], probe["speaker_lr"]) == (20480, 50, 1e-3)
    assert probe["max_train_frames"] is None and probe["standardise"] is False
    header = result.results_md.read_text()
    assert "Probe protocol: `gim+`" in header and "label pairing `gim`" in header
    assert "on the mean of each 20480-sample window" in header and "(all)" in header
    assert not any(run["reused"] for run in data["runs"].values())
    assert {Path(run["path"]).name for run in data["runs"].values()} == {
        "cpc",
        "gim",
        "vgim",
        "supervised-phone",
        "supervised-speaker",
        "greedy-supervised-phone",
        "greedy-supervised-speaker",
    }
    exported = {p: p.stat().st_mtime_ns for p in out.glob("*/export/model.safetensors")}
    assert len(exported) == 7

    # the same experiment through the CLI: every run is reused, nothing is trained again
    args = ["experiment", "librispeech", "--root", str(fixture["root"]), "--out", str(out), "--quiet"]
    args += ["--alignments", str(fixture["alignments"]), "--train-split", str(fixture["train_split"])]
    args += ["--test-split", str(fixture["test_split"]), "--steps", str(STEPS), "--probe-epochs", "2"]
    for override in TINY:
        args += ["--override", override]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert str(out / "results.md") in printed and str(out / "results.json") in printed
    assert "| GIM m2 |" in printed and "| greedy supervised m1 |" in printed
    again = json.loads((out / "results.json").read_text())
    assert all(run["reused"] for run in again["runs"].values())
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/export/model.safetensors")} == exported
    assert again["settings"]["probe"]["epochs"] == 2 and again["settings"]["probe"]["lr"] == 1e-4
    # --seed reaches every preset's config: the seed-0 runs are not reused for seed 1
    assert main([*args, "--seed", "1"]) == 2
    assert "another config" in capsys.readouterr().err

    # a run folder of another config is refused before anything is loaded or trained
    with pytest.raises(ValueError, match="another config"):
        run_librispeech_experiment(
            fixture["root"], **_paths(fixture), out=out, steps=STEPS + 1, overrides=TINY, progress=False
        )


def test_cli_names_the_missing_file(
    fixture: LibriSpeechFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["experiment", "librispeech", "--root", str(fixture["root"]), "--out", str(tmp_path / "x")]
    missing = tmp_path / "nowhere" / "converted_aligned_phones.txt"
    args = base + ["--alignments", str(missing), "--train-split", str(fixture["train_split"])]
    assert main([*args, "--test-split", str(fixture["test_split"])]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(missing) in err and "Traceback" not in err
    assert main([*base, "--alignments", str(fixture["alignments"])]) == 2
    err = capsys.readouterr().err
    assert "--train-split" in err and "--test-split" in err
    args = ["experiment", "librispeech", "--root", str(tmp_path), "--alignments", str(fixture["alignments"])]
    args += ["--train-split", str(fixture["train_split"]), "--test-split", str(fixture["test_split"])]
    assert main(args) == 2
    assert "train-clean-100" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_frame_sample_and_utterance_spread() -> None:
    phones = [np.zeros(n, dtype=np.int64) for n in (5, 0, 7, 3)]
    rng = np.random.default_rng(0)
    assert [s.tolist() for s in _sample_frames(phones, None, rng)] == [list(range(5)), [], list(range(7)), [0, 1, 2]]
    sample = _sample_frames(phones, 6, rng)
    assert sum(s.size for s in sample) == 6
    for s, p in zip(sample, phones, strict=True):
        assert np.all(np.diff(s) > 0) and (s.size == 0 or (s.min() >= 0 and s.max() < p.size))
    ids = [f"{spk}-1-{i:04d}" for spk in range(4) for i in range(10)]
    spread = _spread(ids, 8)
    assert len(spread) == 8 and {i.split("-")[0] for i in spread} == {"0", "1", "2", "3"}
    assert _spread(ids, None) == ids == _spread(ids, 100)


def test_supervised_crops_train_every_module_greedily(fixture: LibriSpeechFixture) -> None:
    """Greedy supervised on crops: each module learns from its own head (frame phones and utterance speakers)."""
    import torch

    from conftest import tiny_config
    from vgim.data.librispeech import corpus_alignments, load_librispeech, read_alignments
    from vgim.evaluate.supervised import train_supervised_crops
    from vgim.model.stack import Stack

    corpus = load_librispeech(fixture["root"], progress=False)
    phones = corpus_alignments(corpus, read_alignments(fixture["alignments"]))
    cfg = tiny_config()
    torch.manual_seed(0)
    init = Stack(cfg.model)
    kw: dict[str, Any] = {"crop_samples": 20000, "steps": 3, "greedy": True, "progress": False}
    frame = train_supervised_crops(cfg, corpus.waves, phones, level="frame", **kw)
    speaker = train_supervised_crops(cfg, corpus.waves, corpus.labels("speaker"), level="utterance", **kw)
    for level, stack in (("frame", frame), ("utterance", speaker)):
        for m in range(stack.n_modules):
            before = torch.cat([p.flatten() for p in init.blocks[m].parameters()])
            after = torch.cat([p.flatten() for p in stack.blocks[m].parameters()])
            assert not torch.allclose(before, after), (level, m)
    with pytest.raises(ValueError, match="level"):
        train_supervised_crops(cfg, corpus.waves, phones, level="segment", steps=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer"):
        train_supervised_crops(cfg, corpus.waves, [p.astype(float) for p in phones], level="frame", steps=1)


def test_a_one_speaker_corpus_probes_phones_and_leaves_the_speaker_column_empty(tmp_path: Path) -> None:
    """The English Asterisk prompts have one voice: the recipe runs the phone probe and skips speakers."""
    fx = make_librispeech_fixture(tmp_path / "one", n_speakers=1, utterances_per_speaker=5)
    result = run_librispeech_experiment(
        fx["root"],
        **_paths(fx),
        presets=("cpc",),
        out=tmp_path / "ls",
        steps=STEPS,
        overrides=TINY,
        supervised_steps=STEPS,
        probe_epochs=2,
        probe_batch_size=128,
        progress=False,
    )
    assert {r.task for r in result.results} == {"phone"}
    assert "| MFCC |" in result.table and "| CPC m2 |" in result.table
    assert all(ln.split("|")[3].strip() == "-" for ln in result.table.splitlines()[2:] if ln.startswith("| "))
    assert "Speaker: not probed (the training split has one speaker)." in result.results_md.read_text()


def test_extra_audio_joins_training_without_the_split_utterances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``extra_audio``: unlabelled files train the presets beside the train split; a file named like a split
    utterance is left out (no test audio trained on), and a finished run is not reused for other audio."""
    import shutil

    import vgim.experiments.librispeech.recipe as recipe

    fx = make_librispeech_fixture(tmp_path / "one", n_speakers=1, utterances_per_speaker=4)
    other = make_librispeech_fixture(tmp_path / "other", n_speakers=2, utterances_per_speaker=3, seed=5)
    extra = tmp_path / "extra"
    extra.mkdir()
    for f in other["files"]:  # the two fixtures share utterance ids: rename the other's
        shutil.copy(f, extra / f"other-{f.stem}.flac")
    test_id = fx["utterances"][-1]
    assert test_id in fx["test_split"].read_text()
    shutil.copy(next(p for p in fx["files"] if p.stem == test_id), extra / f"{test_id}.flac")
    seen: list[int] = []
    real = recipe.batches_from_corpus

    def spy(cfg: Any, corpus: Any) -> Any:
        seen.append(len(corpus))
        return real(cfg, corpus)

    monkeypatch.setattr(recipe, "batches_from_corpus", spy)
    kw: dict[str, Any] = {"presets": ("cpc",), "steps": 4, "overrides": TINY, "baselines": False, "progress": False}
    kw |= {"probe_epochs": 1, "probe_batch_size": 128}
    result = run_librispeech_experiment(fx["root"], **_paths(fx), out=tmp_path / "ls", extra_audio=extra, **kw)
    assert seen == [3 + len(other["files"])]  # 3 train utterances + the other corpus, not the test copy
    info = json.loads(result.results_json.read_text())["data"]["extra_audio"]
    assert info["files"] == len(other["files"]) and info["left_out_split_utterances"] == 1
    assert f"also trained on {len(other['files'])} unlabelled files" in result.results_md.read_text()
    with pytest.raises(ValueError, match="trained on other audio"):
        run_librispeech_experiment(fx["root"], **_paths(fx), out=tmp_path / "ls", **kw)
    with pytest.raises(FileNotFoundError, match="extra training audio"):
        run_librispeech_experiment(fx["root"], **_paths(fx), out=tmp_path / "ls2", extra_audio=tmp_path / "no", **kw)
