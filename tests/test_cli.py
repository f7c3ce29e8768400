from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import toy_waves
from vgim.cli import main


@pytest.fixture
def toy_corpus(tmp_path: Path) -> Path:
    """Twelve toy utterances from three 'speakers' with a manifest (path, speaker, split)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    rows = []
    for i, wave in enumerate(toy_waves(12, seconds=0.8)):
        name = f"utt{i}.wav"
        sf.write(folder / name, wave, 16000)
        rows.append({"path": name, "speaker": f"s{i % 3}", "split": "test" if i >= 9 else "train"})
    with (folder / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _train_args(run: Path, corpus: Path) -> list[str]:
    return [
        "train",
        "--preset",
        "vgim-small",
        "--out",
        str(run),
        "--quiet",
        "train.steps=4",
        "train.batch_size=2",
        "train.log_every=2",
        "train.checkpoint_every=2",
        "data.crop_samples=6400",
        f"data.root={corpus}",
        "data.manifest=manifest.csv",
    ]


def test_train_embed_probe(tmp_path: Path, toy_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(_train_args(run, toy_corpus)) == 0
    assert (run / "export" / "model.safetensors").exists()
    assert "trained 4 steps" in capsys.readouterr().out
    # training again into the same directory without --resume refuses instead of overwriting
    assert main(_train_args(run, toy_corpus)) == 2
    assert "--resume" in capsys.readouterr().err

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"garbage")
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate(toy_waves(4, seconds=3.0)), 22050)  # 192000 samples = 8.7 s at 22.05 kHz
    out = tmp_path / "features.npz"
    assert main(["embed", str(run), str(toy_corpus / "utt0.wav"), str(long), str(bad), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped 1" in text and "bad.wav" in text
    data = np.load(out)
    assert list(data["files"]) == [str(toy_corpus / "utt0.wav"), str(long)]
    assert data["0/m1"].shape[1] == 64 and data["1/m2"].shape[1] == 64
    n_long = round(192000 / 22050 * 16000 / 160)  # 10 ms frames after resampling to 16 kHz
    assert abs(data["1/m2"].shape[0] - n_long) <= 2
    assert list(data["hop"]) == [40, 160]

    assert main(["probe", str(run), "--data", str(toy_corpus), "--manifest", "manifest.csv", "--quiet"]) == 0
    table = capsys.readouterr().out
    for row in ["MFCC", "random init m1", "run m1", "run m2"]:
        assert f"| {row} |" in table
    assert "speaker" in table


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path / "r"), "train.steps=abc"]) == 2
    assert "train.steps: expected an integer" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r"), "--preset", "nope"]) == 2
    assert "no preset or config file named 'nope'" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r"), "model.variational=false", "objective.beta=0.1"]) == 2
    assert "objective.beta > 0 weighs a bottleneck" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r2"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r3"), "--quiet", "data.root=/nonexistent/folder"]) == 2
    assert "/nonexistent/folder" in capsys.readouterr().err
    assert main(["presets"]) == 0
    assert "vgim-thesis" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--steps", "4", "--report-steps", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    for run in ["vgim-demo", "gim-demo"]:  # the demo ends with a report page per run and prints its path
        index = tmp_path / "demo" / run / "report" / "index.html"
        assert index.stat().st_size > 0
        assert f"{index}" in out
    results = (tmp_path / "demo" / "results.md").read_text()
    for row in ["MFCC", "random init (V-GIM) m1", "V-GIM m1", "V-GIM m2", "GIM m1", "GIM m2"]:
        assert f"| {row} |" in results
        assert f"| {row} |" in out
    for task in ["syllable", "vowel", "consonant", "speaker"]:
        assert task in results.splitlines()[2]
    assert (tmp_path / "demo" / "results.json").exists()
    # a second run finds both models finished and only re-probes
    assert main(["demo", "--out", str(tmp_path / "demo"), "--steps", "4", "--no-report", "--quiet"]) == 0


def test_demo_models_option_names_an_unknown_preset_before_training(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from vgim.experiments.commands import named_presets

    assert named_presets("VQ-GIM=vq-gim-small, vae-small") == {"VQ-GIM": "vq-gim-small", "vae-small": "vae-small"}
    assert main(["demo", "--out", str(tmp_path / "d"), "--no-report", "--models", "X=no-such-preset"]) == 2
    assert "no preset or config file named 'no-such-preset'" in capsys.readouterr().err
    assert not (tmp_path / "d" / "no-such-preset").exists()


def test_experiments_are_sub_commands_with_their_own_options(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "ablation", "--seeds", "3"])  # --seeds belongs to the thesis study
    assert exc.value.code == 2 and "unrecognized arguments: --seeds 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment"])
    assert "{thesis,ablation,librispeech}" in capsys.readouterr().err
    assert main(["experiment", "librispeech", "--root", "x"]) == 2
    assert "needs --alignments, --train-split, --test-split" in capsys.readouterr().err
