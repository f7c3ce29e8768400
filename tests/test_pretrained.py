"""Pretrained encoders as package data: ``vgim package`` turns a finished run into one, ``vgim.load`` and the
CLI find it as ``pretrained:NAME``, and the wheel carries the shipped folder."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

import vgim
from conftest import tiny_config, toy_waves
from vgim.cli import main
from vgim.config import load_config
from vgim.data.batches import CropBatches
from vgim.packaged import ENV_DIR, package_run, pretrained_path, shipped_root, train_command
from vgim.train import train

ROOT = Path(__file__).resolve().parents[1]


def _train_tiny(run: Path, stop_after: int | None = None) -> None:
    cfg = tiny_config(steps=4)
    batches = CropBatches(toy_waves(4), cfg.data.crop_samples, cfg.train.batch_size, seed=0)
    train(cfg, run, batches=batches, progress=False, stop_after=stop_after)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pretrained") / "run"
    _train_tiny(path)
    return path


def _probe_rows() -> list[dict[str, object]]:
    """Two rows shaped as `vgim probe --out` writes them (made-up scores for the table's layout only)."""
    row = {"macro_f1": 0.5, "n_train": 9, "n_test": 3, "n_classes": 3, "chance": 0.25}
    return [
        {"task": "speaker", "features": "MFCC", "accuracy": 0.5, **row},
        {"task": "speaker", "features": "run m1", "accuracy": 0.75, **row},
    ]


def _package(run: Path, out: Path, *extra: str) -> list[str]:
    return ["package", str(run), "--name", "tiny-test", "--out", str(out), "--data-licence", "CC0 1.0", *extra]


def test_a_packaged_run_loads_by_name_with_the_runs_weights(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_probe_rows()))
    out = tmp_path / "pretrained"
    command = "vgim train --config tiny.toml --out runs/tiny"
    assert main(_package(run, out, "--command", command, "--probe-results", str(results))) == 0
    assert "packaged" in capsys.readouterr().out
    folder = out / "tiny-test"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (folder / "model.safetensors").read_bytes() == (run / "export" / "model.safetensors").read_bytes()
    readme = (folder / "README.md").read_text()
    assert 'vgim.load("pretrained:tiny-test")' in readme
    assert "CC0 1.0" in readme and command in readme
    assert "| features | speaker |" in readme and "| run m1 | 75.0 |" in readme and "| chance | 25.0 |" in readme
    size = (folder / "model.safetensors").stat().st_size
    assert f"| `model.safetensors` | {size:,} |" in readme

    monkeypatch.setenv(ENV_DIR, str(out))
    assert "tiny-test" in vgim.pretrained_names()
    assert pretrained_path("pretrained:tiny-test") == folder
    model = vgim.load("pretrained:tiny-test")
    exported = load_file(str(run / "export" / "model.safetensors"))
    state = model.state_dict()
    assert state.keys() == exported.keys()
    assert all(torch.equal(state[k], exported[k]) for k in exported)
    wave = toy_waves(1, seconds=0.5, seed=3)[0]
    mine, theirs = model.extract_features(wave, 16000), vgim.load(run).extract_features(wave, 16000)
    assert len(mine) == len(theirs) == 2
    assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))

    wav = tmp_path / "utt.wav"
    sf.write(wav, wave, 16000, subtype="FLOAT")  # read back bit-exact
    features = tmp_path / "features.npz"
    assert main(["embed", "pretrained:tiny-test", str(wav), "--out", str(features)]) == 0
    data = np.load(features)
    assert np.array_equal(data["0/m2"], theirs[1].numpy())
    assert main(["pretrained"]) == 0
    assert f"pretrained:tiny-test  {folder}" in capsys.readouterr().out


def test_an_unknown_name_lists_the_available_ones(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package_run(run, "tiny-a", out=tmp_path, data_licence="CC0 1.0", command="x")
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(ValueError, match=r"pretrained:nope: no such pretrained encoder; available: .*tiny-a"):
        vgim.load("pretrained:nope")
    wav = tmp_path / "utt.wav"
    sf.write(wav, toy_waves(1, seconds=0.5)[0], 16000)
    assert main(["embed", "pretrained:../tiny-a", str(wav), "--out", str(tmp_path / "f.npz")]) == 2
    assert "no such pretrained encoder; available: tiny-a" in capsys.readouterr().err


def test_package_refuses_unfinished_runs_missing_exports_and_existing_folders(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unfinished = tmp_path / "unfinished"
    _train_tiny(unfinished, stop_after=2)
    assert main(_package(unfinished, tmp_path / "out", "--command", "x")) == 2
    assert "has not finished" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(_package(tmp_path / "empty", tmp_path / "out", "--command", "x")) == 2
    assert "no export" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tiny-test").exists()

    assert main(_package(run, tmp_path / "out")) == 2  # the tiny config is no preset: the command is needed
    assert "--command" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"task": "x"}]')
    assert main(_package(run, tmp_path / "out", "--command", "x", "--probe-results", str(bad))) == 2
    assert "not a vgim probe result" in capsys.readouterr().err
    assert main(_package(run, tmp_path / "out", "--name", "Bad Name", "--command", "x")) == 2
    assert "lower-case letters" in capsys.readouterr().err

    licence = tmp_path / "LICENCE.txt"
    licence.write_text("the licence text\n")
    assert main(_package(run, tmp_path / "out", "--command", "x")) == 0
    assert main(_package(run, tmp_path / "out", "--command", "x")) == 2
    assert "--force" in capsys.readouterr().err
    assert main(_package(run, tmp_path / "out", "--command", "x", "--force", "--licence-file", str(licence))) == 0
    folder = tmp_path / "out" / "tiny-test"
    assert (folder / "LICENSE").read_text() == "the licence text\n"
    assert "`LICENSE`" in (folder / "README.md").read_text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tiny-test"]  # no temporary folder left


def test_the_training_command_is_written_from_a_presets_config() -> None:
    overrides = ["train.steps=4", "data.crop_samples=6400", 'data.root="my corpus"', "data.noise_snr_db=[5.0, 20.0]"]
    cfg = load_config("vgim-small", overrides)
    command = train_command(cfg, "runs/x")
    assert command is not None and command.startswith("vgim train --preset vgim-small --out runs/x ")
    args = shlex.split(command)[6:]
    assert load_config("vgim-small", args).to_dict() == cfg.to_dict()
    assert train_command(tiny_config()) is None


def test_the_wheel_carries_the_shipped_encoders() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["vgim"]
    assert "pretrained/*/*" in patterns
    for name in ["model.safetensors", "config.json", "README.md", "LICENSE"]:
        assert any(Path(f"pretrained/tiny/{name}").match(p) for p in patterns)
    # the package's own folder, found beside the code in a checkout, an editable install or a wheel
    assert shipped_root() == Path(vgim.__file__).resolve().parent / "pretrained"
    assert shipped_root().is_dir()


def test_every_shipped_encoder_loads_and_says_its_data_command_and_licence() -> None:
    for folder in sorted(p for p in shipped_root().iterdir() if p.is_dir()):
        readme = (folder / "README.md").read_text()
        for section in ["## Training data", "Licence of the data:", "## Command", "## Probes", "## Licence"]:
            assert section in readme, f"{folder}/README.md lacks {section!r}"
        model = vgim.load(f"pretrained:{folder.name}")
        assert model.config is not None
