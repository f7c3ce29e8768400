from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tiny_config, toy_waves
from vgim.audio import read_audio
from vgim.config import Config, ConfigError, config_from_dict
from vgim.data.augment import Augmenter
from vgim.data.batches import CropBatches
from vgim.data.stream import StreamingBatches, iter_batches, scan_files
from vgim.train import build_batches, load_checkpoint, train

CROP = 6400


def _write_corpus(folder: Path, rate: int = 16000, n: int = 6) -> list[Path]:
    """``n`` FLAC files named ``<speaker>_<k>``, 0.3 s (shorter than a crop) to 1.05 s; every other one stereo."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, wave in enumerate(toy_waves(n, seconds=1.1, seed=7)):
        wave16 = wave[: int(16000 * (0.3 + 0.15 * k))]
        t = np.arange(int(round(wave16.shape[0] * rate / 16000))) / rate
        # Re-render at the file's rate: resampling by interpolation is fine, only the file matters here.
        native = np.interp(t, np.arange(wave16.shape[0]) / 16000, wave16).astype(np.float32)
        data = np.stack([native, 0.5 * native[::-1]], axis=1) if k % 2 else native
        path = folder / f"{'ab'[k % 2]}_{k}.flac"
        sf.write(str(path), data, rate, subtype="PCM_24")
        paths.append(path)
    return sorted(paths)  # the order a folder is listed in


def _stream_and_memory(paths: list[Path], augment: Augmenter | None, speakers: list[str] | None, *, rate: int):
    files, _ = scan_files(paths[0].parent, min_samples=0, progress=False)
    assert [f.path for f in files] == [str(p) for p in paths] and {f.rate for f in files} == {rate}
    stream = StreamingBatches(files, CROP, 5, seed=3, speakers=speakers, augment=augment)
    memory = CropBatches([read_audio(p) for p in paths], CROP, 5, seed=3, speakers=speakers, augment=augment)
    return stream, memory


def test_streamed_batches_equal_in_memory_batches_at_16khz(tmp_path: Path) -> None:
    paths = _write_corpus(tmp_path / "c")  # the 0.3 s file is shorter than a crop: padded
    augment = Augmenter([5.0, 20.0], [toy_waves(1, seconds=0.3, seed=1)[0]], [0.0, 10.0])
    speakers = [p.stem[0] for p in paths]
    stream, memory = _stream_and_memory(paths, augment, speakers, rate=16000)
    for step in range(12):
        for rank in (0, 1):
            a, b = stream.batch(step, rank), memory.batch(step, rank)
            assert torch.equal(a.audio, b.audio), (step, rank)
            assert a.speakers is not None and b.speakers is not None and torch.equal(a.speakers, b.speakers)
    assert not torch.equal(stream.batch(0, 0).audio, stream.batch(0, 1).audio)  # ranks draw different data
    assert torch.equal(stream[4].audio, stream.batch(4).audio)  # dataset item = the step's batch
    assert (stream.batch(0).audio.abs().sum(-1) > 0).all()


def test_build_batches_stream_equals_in_memory(tmp_path: Path) -> None:
    paths = _write_corpus(tmp_path / "c")
    cfg = tiny_config()
    cfg.data.root = str(tmp_path / "c")
    cfg.data.label_pattern = r"(?P<speaker>[a-z])_\d+"
    cfg.data.noise_snr_db = [10.0, 30.0]
    cfg.objective.negatives = "same_speaker"
    memory = build_batches(cfg, progress=False)
    cfg.data.stream = True
    stream = build_batches(cfg, progress=False)
    assert isinstance(stream, StreamingBatches) and isinstance(memory, CropBatches)
    assert len(stream.files) == len(memory.waves) == len(paths) - 1  # the 0.3 s file is shorter than a crop
    for step in range(6):
        a, b = stream.batch(step), memory.batch(step)
        assert torch.equal(a.audio, b.audio) and a.speakers is not None and b.speakers is not None
        assert torch.equal(a.speakers, b.speakers)


@pytest.mark.parametrize("rate", [44100, 22050, 8000])
def test_crops_of_other_rates_equal_resampling_the_whole_file(tmp_path: Path, rate: int) -> None:
    paths = _write_corpus(tmp_path / "c", rate=rate)
    stream, memory = _stream_and_memory(paths, None, None, rate=rate)
    assert [f.samples for f in stream.files] == [read_audio(p).shape[0] for p in paths]
    for step in range(10):
        a, b = stream.batch(step).audio, memory.batch(step).audio
        # Each crop is read from a start on the resampler's period with >= the filter's half-length of
        # context either side, so every output sample is the same dot product of the same taps with the
        # same inputs as in the whole-file resampling (bit-identical in practice). The tolerance only
        # allows a few float32 ulps (eps 1.2e-7 at |x| <= 1) should scipy ever order the sum differently.
        torch.testing.assert_close(a, b, rtol=0.0, atol=1e-6)
    # Crops touching either end of a file (where the read is cut short) and a file shorter than a crop.
    for f, whole in zip(stream.files, memory.waves, strict=True):
        n = whole.shape[0]
        for start in {0, 1, n // 3, max(n - CROP - 1, 0), max(n - CROP, 0)}:
            length = min(CROP, n - start)
            crop = torch.from_numpy(stream.read_crop(f, start, length))
            torch.testing.assert_close(crop, torch.from_numpy(whole[start : start + length]), rtol=0.0, atol=1e-6)
    assert min(f.samples for f in stream.files) < CROP


def test_bad_files_are_skipped_with_their_reasons(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    wave = toy_waves(1)[0]
    sf.write(str(folder / "good.wav"), wave, 16000)
    sf.write(str(folder / "short.wav"), wave[:1000], 16000)
    sf.write(str(folder / "empty.wav"), wave[:0], 16000)
    (folder / "garbage.wav").write_bytes(b"this is not audio" * 10)
    with caplog.at_level("WARNING", logger="vgim"):
        files, skipped = scan_files(folder, min_samples=CROP, progress=False)
    assert [Path(f.path).name for f in files] == ["good.wav"]
    reasons = {Path(p).name: r for p, r in skipped}
    assert reasons["short.wav"] == f"shorter than one crop (1000 < {CROP} samples)"
    assert reasons["empty.wav"] == "empty (0 samples)"
    assert reasons["garbage.wav"].startswith("unreadable:")
    for name in reasons:
        assert f"{folder / name}: " in caplog.text
    assert "skipped 3 of 4 files" in caplog.text
    # padding short files keeps them; an empty file is still unusable
    files, skipped = scan_files(folder, min_samples=0, progress=False)
    assert sorted(Path(f.path).name for f in files) == ["good.wav", "short.wav"]
    assert [Path(p).name for p, _ in skipped] == ["empty.wav", "garbage.wav"]
    with pytest.raises(ValueError, match="no usable audio"):
        scan_files(folder, min_samples=10**6, progress=False)
    # a file damaged after the scan gives a silent crop and a warning, not a crashed run
    (folder / "good.wav").write_bytes(b"gone")
    caplog.clear()
    with caplog.at_level("WARNING", logger="vgim"):
        batch = StreamingBatches(files[:1], CROP, 2).batch(0)
    assert not batch.audio.any() and "good.wav: unreadable crop" in caplog.text


def test_iter_batches_with_workers_gives_the_in_process_batches() -> None:
    source = CropBatches(toy_waves(), CROP, 3, seed=5)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fetched = list(iter_batches(source, range(7, 13), workers=2, rank=1))
    assert torch.equal(torch.rand(3), expected)  # starting the workers leaves the model's RNG alone
    assert len(fetched) == 6
    for step, batch in zip(range(7, 13), fetched, strict=True):
        assert torch.equal(batch.audio, source.batch(step, rank=1).audio)
    assert list(iter_batches(source, range(3, 3), workers=2)) == []
    with pytest.raises(ConfigError, match="data.workers"):
        config_from_dict(tiny_config().to_dict() | {"data": {"workers": -1}})


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    return {f"model.{k}": v for k, v in state["model"].items()} | {
        f"objective.{k}": v for k, v in state["objective"].items()
    }


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _config(root: Path, *, stream: bool, workers: int) -> Config:
    cfg = tiny_config(steps=16, variational=True, beta=0.01)
    cfg.data.root = str(root)
    cfg.data.pad_short = True
    cfg.data.noise_snr_db = [10.0, 30.0]
    cfg.data.stream = stream
    cfg.data.workers = workers
    return cfg


def test_streaming_with_workers_trains_the_same_weights_and_resumes_exactly(tmp_path: Path) -> None:
    _write_corpus(tmp_path / "c")
    root = tmp_path / "c"
    train(_config(root, stream=False, workers=0), tmp_path / "memory", progress=False)
    train(_config(root, stream=True, workers=2), tmp_path / "stream", progress=False)
    _assert_same_weights(tmp_path / "memory", tmp_path / "stream")

    cfg = _config(root, stream=True, workers=2)
    part = train(cfg, tmp_path / "part", progress=False, stop_after=7)
    assert part.step == 7
    done = train(cfg, tmp_path / "part", progress=False, resume=True)
    assert done.step == 16
    _assert_same_weights(tmp_path / "memory", tmp_path / "part")
