"""Bad input and faults (issue 15): each case is a clear error naming the file or key, a counted and logged
skip, or a documented behaviour -- never a raw traceback, a silently wrong result or lost data.

Most cases are generated here: small WAV files, manifests and configs that are wrong in one way each.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import vgim
from conftest import tiny_config, toy_waves
from vgim.audio import AudioError, read_audio
from vgim.cli import main
from vgim.config import ConfigError, config_from_dict, load_config, resume_config
from vgim.data.batches import CropBatches
from vgim.data.corpus import AudioCorpus, MissingLabelError, Utterance, load_corpus
from vgim.data.stream import StreamingBatches, scan_files
from vgim.evaluate.evaluation import EvaluationSplit, evaluate_models, label_tasks
from vgim.model.stack import Stack, n_frames
from vgim.train.loop import CHECKPOINT, export_model, load_checkpoint, resolve_device, save_checkpoint, train

# -- helpers -------------------------------------------------------------------------------------------------


def _corpus(folder: Path, n: int = 6, seconds: float = 0.5) -> list[str]:
    """``n`` good toy WAVs in ``folder``; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, wave in enumerate(toy_waves(n, seconds=seconds)):
        sf.write(folder / f"u{i}.wav", wave, 16000)
        names.append(f"u{i}.wav")
    return names


def _manifest(folder: Path, text: str, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


# -- audio files ---------------------------------------------------------------------------------------------


def test_float_wav_far_outside_range_is_scaled_to_peak_one_warned_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _corpus(tmp_path, n=3)
    loud = toy_waves(1, seconds=0.5, seed=7)[0]
    loud = loud / np.abs(loud).max() * 423.0
    sf.write(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="vgim"):
        corpus = load_corpus(tmp_path, progress=False)
    assert len(corpus) == 4
    assert [p for p, _ in corpus.rescaled] == [str(tmp_path / "loud.wav")]
    assert corpus.rescaled[0][1] == pytest.approx(423.0, rel=1e-4)
    wave = corpus.waves[[u.path for u in corpus.utterances].index(str(tmp_path / "loud.wav"))]
    assert float(np.abs(wave).max()) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(wave, loud / 423.0, rtol=1e-4, atol=1e-6)  # scaled, not clipped
    assert "scaled 1 of 4 files down to peak 1" in caplog.text
    assert "loud.wav: samples peak at 423" in caplog.text


def test_streaming_scales_a_loud_float_file_exactly_as_loading_it(tmp_path: Path) -> None:
    loud = toy_waves(1, seconds=0.5, seed=3)[0] * 50.0
    sf.write(tmp_path / "loud.wav", loud, 22050, subtype="FLOAT")  # another rate: the resampled path too
    sf.write(tmp_path / "ok.wav", toy_waves(1, seconds=0.5)[0], 16000)
    files, skipped = scan_files(tmp_path, progress=False)
    assert not skipped
    gains = {Path(f.path).name: f.gain for f in files}
    assert gains["ok.wav"] == 1.0
    assert gains["loud.wav"] == pytest.approx(1 / float(np.abs(loud).max()), rel=1e-5)
    stream = StreamingBatches(files, 2000, 1)
    for f in files:
        whole = read_audio(f.path)
        np.testing.assert_array_equal(stream.read_crop(f, 1000, 2000), whole[1000:3000])


def test_broken_symlink_is_a_counted_and_logged_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _corpus(tmp_path, n=2)
    (tmp_path / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    with caplog.at_level(logging.WARNING, logger="vgim"):
        corpus = load_corpus(tmp_path, progress=False)
    assert len(corpus) == 2
    assert corpus.skipped == [
        (str(tmp_path / "gone.wav"), f"broken symbolic link (its target {tmp_path}/deleted.wav does not exist)")
    ]
    assert "skipped 1 of 3 files (reasons: broken symbolic link: 1)" in caplog.text
    _, skipped = scan_files(tmp_path, progress=False)
    assert [p for p, _ in skipped] == [str(tmp_path / "gone.wav")]
    with pytest.raises(AudioError, match="gone.wav: broken symbolic link"):
        read_audio(tmp_path / "gone.wav")


def test_broken_symlink_among_background_files_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from vgim.config import DataConfig
    from vgim.data.augment import Augmenter

    _corpus(tmp_path, n=1)
    (tmp_path / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    with caplog.at_level(logging.WARNING, logger="vgim"):
        augment = Augmenter.from_config(DataConfig(background_dir=str(tmp_path)))
    assert len(augment.background) == 1
    assert f"skipping background file {tmp_path / 'gone.wav'}: broken symbolic link" in caplog.text


@pytest.mark.parametrize("rate", [1, 100, 2_000_000])
def test_implausible_header_sample_rate_is_refused(tmp_path: Path, rate: int) -> None:
    _corpus(tmp_path, n=2)
    sf.write(tmp_path / "odd.wav", np.zeros(64, dtype=np.float32) + 0.1, rate)
    with pytest.raises(AudioError, match=f"odd.wav: implausible sample rate {rate} Hz"):
        read_audio(tmp_path / "odd.wav")
    corpus = load_corpus(tmp_path, progress=False)
    assert [(Path(p).name, r.split(" (")[0]) for p, r in corpus.skipped] == [
        ("odd.wav", f"implausible sample rate {rate} Hz in the header")
    ]
    _, skipped = scan_files(tmp_path, progress=False)
    assert [Path(p).name for p, _ in skipped] == ["odd.wav"]


def test_antiphase_stereo_is_reported_as_cancelling_not_silent(tmp_path: Path) -> None:
    wave = toy_waves(1, seconds=0.5)[0]
    sf.write(tmp_path / "anti.wav", np.stack([wave, -wave], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="anti.wav: channels cancel when mixed to mono"):
        read_audio(tmp_path / "anti.wav")
    # ordinary stereo still mixes to mono
    sf.write(tmp_path / "stereo.wav", np.stack([wave, 0.5 * wave], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(tmp_path / "stereo.wav"), 0.75 * wave, atol=1e-6)


def test_a_folder_named_like_audio_and_a_missing_file_are_named(tmp_path: Path) -> None:
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(AudioError, match="x.wav: is a folder, not an audio file"):
        read_audio(tmp_path / "x.wav")
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        read_audio(tmp_path / "missing.wav")


def test_corpus_root_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    names = _corpus(tmp_path, n=1)
    with pytest.raises(ValueError, match=r"u0.wav is a file, not a folder of audio"):
        load_corpus(tmp_path / names[0], progress=False)


@pytest.mark.parametrize("rate", [0, -16000, 10])
def test_bad_target_sample_rate_is_one_error_not_one_per_file(tmp_path: Path, rate: int) -> None:
    _corpus(tmp_path, n=3)
    with pytest.raises(ValueError, match=f"sample_rate must be between 1000 and 768000 Hz, got {rate}"):
        load_corpus(tmp_path, sample_rate=rate, progress=False)
    with pytest.raises(ValueError, match="sample_rate must be between"):
        scan_files(tmp_path, sample_rate=rate, progress=False)


# -- manifests -----------------------------------------------------------------------------------------------

BAD_MANIFESTS: dict[str, tuple[str, str]] = {
    "duplicate row": (
        "path,speaker\nu0.wav,a\nu1.wav,b\nu0.wav,c\n",
        r"u0.wav is listed twice \(lines 2 and 4\)",
    ),
    "duplicate row, other spelling": ("path,speaker\nu0.wav,a\n./u0.wav,a\n", "listed twice"),
    "same file in train and test": (
        "path,speaker,split\nu0.wav,a,train\nu1.wav,b,train\nu0.wav,a,test\n",
        r"u0.wav is in split 'train' \(line 2\) and in split 'test' \(line 4\)",
    ),
    "ragged row, too many cells": (
        "path,speaker\nu0.wav,a\nu1.wav,b,extra\n",
        r"line 3: 3 cells but the header has 2",
    ),
    "ragged row, too few cells": ("path,speaker,split\nu0.wav,a,train\nu1.wav,b\n", r"line 3: 2 cells"),
    "no path column": ("file,speaker\nu0.wav,a\n", "has no 'path' column"),
    "duplicate column": ("path,speaker,speaker\nu0.wav,a,b\n", r"duplicate column\(s\) \['speaker'\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_is_an_error_naming_the_file(tmp_path: Path, case: str) -> None:
    _corpus(tmp_path, n=2)
    text, message = BAD_MANIFESTS[case]
    path = _manifest(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_corpus(tmp_path, manifest=path.name, progress=False)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=message):
        scan_files(tmp_path, manifest=path.name, progress=False)


def test_non_utf8_manifest_names_the_file(tmp_path: Path) -> None:
    _corpus(tmp_path, n=1)
    path = tmp_path / "latin1.csv"
    path.write_bytes("path,word\nu0.wav,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"manifest {path} is not UTF-8 text"):
        load_corpus(tmp_path, manifest=path.name, progress=False)


def test_empty_label_cell_is_no_label_not_a_class(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _corpus(tmp_path, n=3)
    path = _manifest(tmp_path, "path,speaker,word\nu0.wav,a,x\nu1.wav,,y\nu2.wav,b,\n")
    with caplog.at_level(logging.WARNING, logger="vgim"):
        corpus = load_corpus(tmp_path, manifest=path.name, progress=False)
    assert [u.labels for u in corpus.utterances] == [{"speaker": "a", "word": "x"}, {"word": "y"}, {"speaker": "b"}]
    assert "1 row(s) leave label column 'speaker' empty (line 3)" in caplog.text
    with pytest.raises(MissingLabelError, match=r"label 'speaker' missing for .*u1.wav \(1 of 3 files lack it\)"):
        corpus.labels("speaker")
    with pytest.raises(KeyError):  # still a KeyError for lookups
        corpus.labels("speaker")


def test_manifest_row_pointing_at_a_folder_or_broken_link_is_skipped_with_its_reason(tmp_path: Path) -> None:
    _corpus(tmp_path, n=1)
    (tmp_path / "d.wav").mkdir()
    (tmp_path / "l.wav").symlink_to(tmp_path / "nowhere.wav")
    path = _manifest(tmp_path, "path\nu0.wav\nd.wav\nl.wav\nmissing.wav\n")
    corpus = load_corpus(tmp_path, manifest=path.name, progress=False)
    reasons = {Path(p).name: r.split(" (")[0] for p, r in corpus.skipped}
    assert reasons == {
        "d.wav": "is a folder, not an audio file",
        "l.wav": "broken symbolic link",
        "missing.wav": "file not found",
    }


# -- configs -------------------------------------------------------------------------------------------------

# (override, what the message must name): each must be a ConfigError from `vgim train`, exit 2, no traceback
BAD_OVERRIDES = [
    ("data.crop_samples=0", "data.crop_samples must be >= 1"),
    ("data.crop_samples=-5", "data.crop_samples must be >= 1"),
    ("data.crop_samples=100", "data.crop_samples=100 gives module 1"),
    ("data.sample_rate=0", "data.sample_rate = 0: vgim models run at 16000 Hz"),
    ("data.sample_rate=8000", "leave data.sample_rate at 16000"),
    ("objective.n_negatives=100000", "objective.n_negatives=100000 is more than the"),
    ("objective.n_predictions=1000", "too few to predict objective.n_predictions=1000"),
    ("data.min_rms=-1", "data.min_rms must be >= 0"),
    ("train.batch_size=0", "train.batch_size >= 1"),
    ("data.workers=-2", "data.workers must be >= 0"),
    ("data.synthetic_noise_snr_db=[25.0, 5.0]", "data.synthetic_noise_snr_db must be [] or [low, high]"),
    ("data.synthetic_noise_snr_db=[5.0]", "data.synthetic_noise_snr_db must be [] or [low, high]"),
    ("objective.negatives=nope", "objective.negatives: expected one of"),
    ("train.steps=ten", "train.steps: expected an integer"),
    ("nosuch.key=1", "unknown key(s) ['nosuch']"),
]


@pytest.mark.parametrize(("override", "message"), BAD_OVERRIDES)
def test_bad_override_is_a_config_error_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, message: str
) -> None:
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet", override]) == 2
    err = _err(capsys)
    assert err.startswith("vgim train: error: ")
    assert message in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("negatives", ["same_sequence", "other_sequences", "batch", "same_speaker"])
def test_n_negatives_is_checked_against_its_strategy_pool(negatives: str) -> None:
    cfg = load_config("gim-small")
    frames, batch = n_frames(cfg.model, cfg.data.crop_samples)[-1], cfg.train.batch_size
    pool = {"same_sequence": frames - 1, "other_sequences": (batch - 1) * frames}.get(negatives, batch * frames - 1)
    ok = load_config("gim-small", [f"objective.negatives={negatives}", f"objective.n_negatives={pool}"])
    assert ok.objective.n_negatives == pool
    with pytest.raises(ConfigError, match=f"n_negatives={pool + 1} is more than the {pool} frames"):
        load_config("gim-small", [f"objective.negatives={negatives}", f"objective.n_negatives={pool + 1}"])


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_data_sample_rate_other_than_the_models_is_refused(rate: int) -> None:
    # every model runs at SAMPLE_RATE and every loader resamples to it: another data.sample_rate would only
    # make the training crops and the seconds in the logs disagree with what the model sees
    from vgim.frames import SAMPLE_RATE

    with pytest.raises(ConfigError, match=f"data.sample_rate = {rate}: vgim models run at {SAMPLE_RATE} Hz"):
        load_config("gim-small", [f"data.sample_rate={rate}"])
    saved = load_config("gim-small").to_dict()
    saved["data"]["sample_rate"] = rate
    with pytest.raises(ConfigError, match="data.sample_rate"):  # a saved config is checked the same way
        config_from_dict(saved)
    assert load_config("gim-small", [f"data.sample_rate={SAMPLE_RATE}"]).data.sample_rate == SAMPLE_RATE


def test_preset_inheriting_itself_is_refused(tmp_path: Path) -> None:
    own = tmp_path / "own.toml"
    own.write_text(f'inherit = "{own}"\n')
    with pytest.raises(ConfigError, match="inherit chain loops back on itself"):
        load_config(str(own))
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(f'inherit = "{b}"\n')
    b.write_text(f'inherit = "{a}"\n[train]\nsteps = 3\n')
    with pytest.raises(ConfigError, match=r"a.toml -> .*b.toml -> .*a.toml"):
        load_config(str(a))


def test_config_file_names_are_checked(tmp_path: Path) -> None:
    yaml = tmp_path / "cfg.yaml"
    yaml.write_text("train:\n  steps: 3\n")
    with pytest.raises(ConfigError, match="cfg.yaml does not end in .toml"):
        load_config(str(yaml))
    with pytest.raises(ConfigError, match="missing.toml not found"):
        load_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(str(tmp_path))
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="latin.toml: not UTF-8"):
        load_config(str(latin))


def test_device_that_this_torch_cannot_use_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("banana")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the CPU-only message cannot be seen here")
    with pytest.raises(ValueError, match="device 'cuda' asked for, but"):
        resolve_device("cuda")
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet", "train.device=cuda"]) == 2
    assert "use cpu or auto" in _err(capsys)


def test_same_speaker_negatives_without_speaker_labels_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _corpus(tmp_path / "c", n=4)
    _manifest(tmp_path / "c", "path,word\nu0.wav,a\nu1.wav,b\nu2.wav,c\nu3.wav,d\n")
    args = ["train", "--out", str(tmp_path / "run"), "--quiet", f"data.root={tmp_path / 'c'}"]
    args += ["data.manifest=manifest.csv", "data.crop_samples=6400", "objective.negatives=same_speaker"]
    assert main(args) == 2
    assert "label 'speaker' missing for" in _err(capsys)


# -- runs, checkpoints and exports -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run of the tiny config (checkpoint and export)."""
    torch.manual_seed(0)
    cfg = tiny_config(steps=4)
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(cfg, run, batches=CropBatches(toy_waves(), cfg.data.crop_samples, 4, seed=0), progress=False)
    return run


def _copy_run(run: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run, dest)
    return dest


class _Usage:
    """What ``shutil.disk_usage`` returns, with the free bytes chosen."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.total = self.used = 0


def test_full_disk_during_a_checkpoint_says_so_and_leaves_no_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"step": 1, "model": {}, "config": {}})
    good = path.read_bytes()

    def full(obj: object, f: str | os.PathLike[str]) -> None:
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="no space left on the disk while writing the checkpoint") as info:
        save_checkpoint(path, {"step": 2})
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(path)
    assert "the previous one is intact" in str(info.value)
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]

    # torch's zip writer reports a short write as a RuntimeError: with the disk (nearly) full that is the disk
    def short_write(obj: object, f: str | os.PathLike[str]) -> None:
        Path(f).write_bytes(b"partial")
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", short_write)
    monkeypatch.setattr("shutil.disk_usage", lambda p: _Usage(free=1024))
    with pytest.raises(OSError, match="no space left on the disk"):
        save_checkpoint(path, {"step": 2})
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    # any other failure is passed on as it is, still without a partial file
    monkeypatch.setattr("shutil.disk_usage", lambda p: _Usage(free=1 << 40))
    with pytest.raises(RuntimeError, match="file write failed"):
        save_checkpoint(path, {"step": 2})
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_full_disk_during_training_is_one_line_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(obj: object, f: str | os.PathLike[str]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr("vgim.train.loop.build_batches", lambda cfg, progress=True: _toy_batches(cfg))
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--quiet", "--preset", "gim-small", *_FAST]) == 2
    err = _err(capsys)
    assert f"{run / CHECKPOINT}: no space left on the disk while writing the checkpoint" in err
    assert "Traceback" not in err
    assert not list((run / "checkpoints").glob("*.tmp"))


_FAST = ["train.steps=2", "train.batch_size=2", "train.checkpoint_every=1", "data.crop_samples=6400"]


def _toy_batches(cfg: object) -> CropBatches:
    from vgim.config import Config

    assert isinstance(cfg, Config)
    return CropBatches(toy_waves(4), cfg.data.crop_samples, cfg.train.batch_size, seed=0)


def test_unwritable_output_folder_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # (root ignores file modes, so the refusal is simulated where the run directory is first written)
    def refuse(self: object, path: str | Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("vgim.config.Config.save", refuse)
    run = tmp_path / "ro" / "run"
    assert main(["train", "--out", str(run), "--quiet", "--preset", "gim-small", *_FAST]) == 2
    err = _err(capsys)
    assert f"{run / 'config.json'}: Permission denied (the folder cannot be written" in err


def test_interrupt_before_the_first_checkpoint_does_not_suggest_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("vgim.train.loop.train", interrupted)
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--quiet"]) == 130
    assert "nothing to resume" in _err(capsys)
    save_checkpoint(run / CHECKPOINT, {"step": 1})
    assert main(["train", "--out", str(run), "--quiet", "--preset", "gim-small"]) == 130
    assert f"vgim train --out {run} --resume" in _err(capsys)


def test_checkpoint_with_foreign_objects_is_refused_without_torchs_unsafe_hint(tmp_path: Path) -> None:
    bad = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {}, "payload": Path("x")}, bad, pickle_protocol=2)  # a non-tensor object
    with pytest.raises(ValueError, match="evil.pt: not a readable vgim checkpoint") as info:
        load_checkpoint(bad)
    assert "weights_only" not in str(info.value)
    assert "holds objects other than tensors" in str(info.value)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="raw.pt: not a"):
        load_checkpoint(raw)


def test_export_follows_the_umask(tmp_path: Path) -> None:
    cfg = tiny_config()
    old = os.umask(0o027)
    try:
        out = export_model(Stack(cfg.model), cfg, tmp_path / "export")
    finally:
        os.umask(old)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o640
    assert (out / "config.json").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("broken", ["model.safetensors", "config.json"])
def test_corrupted_export_names_the_file_and_falls_back_to_the_checkpoint(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    (run / "export" / broken).write_bytes(b"\x00garbage{")
    with caplog.at_level(logging.WARNING, logger="vgim"):
        model = vgim.load(run)
    assert f"{run / 'export' / broken}: not a" in caplog.text
    assert f"loading the run's last checkpoint {run / CHECKPOINT} instead" in caplog.text
    reference = vgim.load(run / CHECKPOINT)
    for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    (run / CHECKPOINT).unlink()
    with pytest.raises(ValueError, match=f"{run / 'export' / broken}: not a"):
        vgim.load(run)


def test_embed_of_a_missing_file_says_file_not_found(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["embed", str(tiny_run), str(tmp_path / "missing.wav"), "--out", str(tmp_path / "f.npz")]) == 1
    assert f"skipped {tmp_path / 'missing.wav'}: file not found" in capsys.readouterr().out


# -- resume ----------------------------------------------------------------------------------------------------


def test_resume_applies_safe_overrides_refuses_others_and_counts_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("vgim.train.loop.build_batches", lambda cfg, progress=True: _toy_batches(cfg))
    run = tmp_path / "run"
    first = ["train", "--out", str(run), "--quiet", "--preset", "gim-small", *_FAST, "train.lr=0.001"]
    assert main(first) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--quiet", "train.steps=3", "train.lr=0.5"]) == 2
    err = _err(capsys)
    assert "train.lr cannot change on resume" in err
    assert main(["train", "--out", str(run), "--resume", "--quiet", "train.steps=1"]) == 2
    assert "train.steps=1 is fewer than the 2 steps" in _err(capsys)
    assert main(["train", "--out", str(run), "--resume", "--preset", "cpc", "--quiet"]) == 2
    assert "trained with the config 'gim-small'; --preset cpc names another" in _err(capsys)

    resume = ["train", "--out", str(run), "--resume", "--preset", "gim-small", "--quiet"]  # the run's own preset
    assert main([*resume, "train.steps=3", "train.log_every=1"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[: out.index("\n}\n") + 2])
    assert printed["name"] == "gim-small"  # the run's config, not the default preset's
    assert printed["train"]["lr"] == 0.001 and printed["train"]["steps"] == 3
    assert printed["data"]["crop_samples"] == 6400
    assert "trained 1 steps (from step 2 to step 3)" in out
    assert load_checkpoint(run / CHECKPOINT)["step"] == 3
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 3


def test_resume_config_refuses_a_new_step_budget_where_steps_shape_the_run() -> None:
    cfg = tiny_config(mode="sequential", steps=10)
    with pytest.raises(ConfigError, match="train.mode='sequential' splits them over the modules"):
        resume_config(cfg.to_dict(), ["train.steps=20"])
    cfg = tiny_config(steps=10)
    cfg.train.lr_schedule = "cosine"
    with pytest.raises(ConfigError, match="cosine"):
        resume_config(cfg.to_dict(), ["train.steps=20"])
    assert resume_config(cfg.to_dict(), ["train.checkpoint_every=3"]).train.checkpoint_every == 3
    assert resume_config(cfg.to_dict(), []) == config_from_dict(cfg.to_dict())


# -- decode, report, probe -------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", ["0", "-3", "two"])
def test_decode_and_report_refuse_step_counts_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: str
) -> None:
    for args in (["decode", str(tmp_path), "--steps", steps], ["report", str(tmp_path), "--decoder-steps", steps]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        assert "expected an integer >= 1" in _err(capsys)
    from vgim.interpret.decoders import train_decoders

    with pytest.raises(ValueError, match="decoder steps must be an integer >= 1"):
        train_decoders(tmp_path, steps=int(steps) if steps != "two" else 0)


def test_failed_report_leaves_no_empty_folder(tmp_path: Path) -> None:
    from vgim.report import build_report

    run = tmp_path / "run"
    run.mkdir()  # exists, but holds no model
    with pytest.raises(FileNotFoundError, match="not a vgim run directory"):
        build_report(run, progress=False)
    assert not (run / "report").exists()
    kept = run / "mine"
    kept.mkdir()
    with pytest.raises(FileNotFoundError):
        build_report(run, kept, progress=False)
    assert kept.is_dir()  # a folder the caller made stays


def _labelled_corpus(folder: Path) -> Path:
    """Twelve toy utterances with speaker and language labels, 9 train / 3 test."""
    names = _corpus(folder, n=12)
    rows = [f"{n},s{i % 3},{'en' if i % 2 else 'fr'},{'test' if i >= 9 else 'train'}" for i, n in enumerate(names)]
    return _manifest(folder, "path,speaker,language,split\n" + "\n".join(rows) + "\n")


def test_probe_probes_every_label_column_and_task_chooses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_config()
    torch.manual_seed(0)
    export = export_model(Stack(cfg.model), cfg, tmp_path / "export")
    manifest = _labelled_corpus(tmp_path / "c")
    base = ["probe", str(export), "--data", str(tmp_path / "c"), "--manifest", manifest.name, "--quiet"]
    assert main([*base, "--no-baselines", "--out", str(tmp_path / "all.json")]) == 0
    tasks = {r["task"] for r in json.loads((tmp_path / "all.json").read_text())}
    assert tasks == {"speaker", "language"}
    assert main([*base, "--no-baselines", "--task", "language", "--out", str(tmp_path / "one.json")]) == 0
    assert {r["task"] for r in json.loads((tmp_path / "one.json").read_text())} == {"language"}
    capsys.readouterr()
    assert main([*base, "--task", "word"]) == 2
    assert "no label for task(s) ['word'] in this corpus; tasks: speaker, language" in _err(capsys)


def test_label_tasks_notes_labels_that_cannot_be_probed() -> None:
    def corpus(labels: list[dict[str, str]], segments: list[list[tuple[int, int]] | None]) -> AudioCorpus:
        utts = [Utterance(f"u{i}", lab, seg) for i, (lab, seg) in enumerate(zip(labels, segments, strict=True))]
        return AudioCorpus(utts, [np.zeros(1600, dtype=np.float32)] * len(utts), 16000)

    seg = [(0, 800), (800, 1600)]
    train_part = corpus(
        [{"speaker": "a", "tone": "h-l", "lang": "x"}, {"speaker": "b", "tone": "l-l", "lang": "x"}, {"tone": "h-h"}],
        [seg, seg, seg],
    )
    test_part = corpus([{"speaker": "a", "tone": "l-h", "lang": "x"}], [seg])
    tasks, notes = label_tasks(EvaluationSplit(train_part, test_part))
    assert [(t.name, t.level) for t in tasks] == [("tone", "segment")]
    assert "no speaker probe: 1 of 4 utterances have no 'speaker' label" in notes
    assert "no lang probe: 1 of 4 utterances have no 'lang' label" in notes
    one_class = corpus([{"lang": "x", "word": "a"}, {"lang": "x", "word": "b"}], [None, None])
    tasks, notes = label_tasks(EvaluationSplit(one_class, corpus([{"lang": "x", "word": "c"}], [None])))
    assert tasks == []
    assert notes == [
        "no lang probe: the training split has one class only (x)",
        "no word probe: no test label occurs in training (the classes are held out)",
    ]


# -- one probe of one run, one number ---------------------------------------------------------------------------


def test_probe_scores_do_not_depend_on_the_callers_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo probed with the default threads and the report on one: features ~1e-7 apart made the lbfgs
    probes differ (V-GIM m1 syllable 63.2 against 62.8). evaluate_models now always runs on one thread."""
    import vgim.evaluate.evaluation as evaluation

    torch.manual_seed(0)
    model = Stack(load_config("vgim-small").model).eval()  # large enough that the thread count shows
    waves = toy_waves(8, seconds=1.0)
    utts = [Utterance(f"u{i}", {"speaker": f"s{i % 2}"}) for i in range(8)]
    split = EvaluationSplit(AudioCorpus(utts[:6], waves[:6], 16000), AudioCorpus(utts[6:], waves[6:], 16000))
    seen: list[tuple[int, list[np.ndarray]]] = []
    real: Callable[..., object] = evaluation.run_probes

    def spy(feature_sets: dict[str, tuple[list[np.ndarray], list[np.ndarray], object]], *args: object, **kw: object):  # type: ignore[no-untyped-def]
        seen.append((torch.get_num_threads(), feature_sets["m m1"][0]))
        return real(feature_sets, *args, **kw)

    monkeypatch.setattr(evaluation, "run_probes", spy)
    torch.set_num_threads(2)
    first = evaluate_models({"m": model}, split, baselines=False)
    assert torch.get_num_threads() == 2  # restored
    torch.set_num_threads(1)
    second = evaluate_models({"m": model}, split, baselines=False)
    for a, b in zip(seen[0][1], seen[1][1], strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit
    assert first == second
    assert [n for n, _ in seen] == [1, 1]
