"""The APC head (objective/apc.py): log-mel targets at each module's frames, training, presets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import preset_step, tiny_config, toy_waves
from vgim.config import ConfigError, load_config
from vgim.data.batches import CropBatches
from vgim.frames import FrameInfo
from vgim.objective.apc import LogMel
from vgim.train import train
from vgim.train.metrics import read_metrics


def test_log_mel_frames_sit_where_the_module_frames_sit() -> None:
    frame = FrameInfo(hop=160, offset=79.5, receptive_field=400)
    log_mel = LogMel(frame, n_mels=20, window_ms=25.0, sample_rate=16000)
    audio = torch.zeros(1, 1, 16000)
    for at in (3210, 9000):
        audio[0, 0, at : at + 40] = 1.0  # short bursts
    mel = log_mel(audio, 100)
    assert mel.shape == (1, 100, 20)
    energy = mel[0].mean(dim=1)
    loud = set(torch.topk(energy, 2).indices.tolist())
    want = {frame.nearest_frame(3230, 100), frame.nearest_frame(9020, 100)}
    assert all(any(abs(a - b) <= 1 for b in loud) for a in want), (loud, want)
    # a tone lights the mel band of its frequency
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * math.pi * 1000 * t)[None, None]
    band = int(log_mel(tone, 50)[0, 10:40].mean(0).argmax())
    import librosa

    centres = librosa.mel_frequencies(n_mels=22, fmin=0.0, fmax=8000.0)[1:-1]
    assert abs(centres[band] - 1000) < 250


def test_apc_trains_and_logs_its_own_stats(tmp_path: Path) -> None:
    cfg = tiny_config(steps=40)
    cfg.objective.head = "apc"
    batches = CropBatches(toy_waves(), cfg.data.crop_samples, cfg.train.batch_size, seed=cfg.train.seed)
    train(cfg, tmp_path / "run", batches=batches, progress=False)
    metrics = read_metrics(tmp_path / "run")
    for m in (0, 1):
        cols = metrics[m]
        assert {"loss", "apc_l1", "apc_l1_copy"} <= set(cols)
        assert cols["apc_l1"][-1] < cols["apc_l1"][0]


def test_apc_options_are_checked_and_the_presets_build() -> None:
    with pytest.raises(ConfigError, match="objective.options.shift: expected an integer"):
        load_config("gim-small", ["objective.head=apc", "objective.options={shift=0.5}"])
    for name in ["apc-gim-small", "apc-gim-thesis-improved"]:
        loss, losses = preset_step(name)
        assert torch.isfinite(loss) and {"apc_l1", "apc_l1_copy"} <= set(losses[0].stats), name
