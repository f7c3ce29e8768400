"""Autoregressive predictive coding (APC; Chung et al. 2019, "An unsupervised autoregressive model for speech
representation learning") as a head: ``objective.head = "apc"``.

From the context ``c_t`` a linear layer predicts the log-mel spectrum of the input ``shift`` frames ahead,
``x_{t+n}``, and the loss is the L1 distance, averaged over frames, batch and mel bands. The log-mel frames
are computed from the batch's waveform at the module's own frame rate: frame ``t`` is the spectrum of a
window centred where the module's frame ``t`` is centred (:class:`~vgim.frames.FrameInfo`), so every
module, at any hop, predicts the same kind of target. Unlike InfoNCE the targets are fixed features, not the
module's latents: nothing can collapse, and no negatives are drawn. Stats: ``apc_l1`` and, for scale,
``apc_l1_copy``, the L1 distance of simply repeating the current frame (``x_t`` for ``x_{t+n}``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.config import ObjectiveConfig
from vgim.data.batches import Batch
from vgim.frames import SAMPLE_RATE, FrameInfo
from vgim.objective.base import Head, HeadOutput, HeadSpec, register_head

__all__ = ["APC", "APCOptions", "LogMel"]

LOG_FLOOR = 1e-5


@dataclass
class APCOptions:
    """``shift``: how many of the module's frames ahead to predict (the paper's n, 3 at 10 ms frames);
    ``n_mels``: mel bands of the target; ``window_ms``: the target's analysis window, at least two hops."""

    shift: int = 3
    n_mels: int = 40
    window_ms: float = 25.0

    def check(self) -> None:
        from vgim.config import ConfigError

        if self.shift < 1 or self.n_mels < 1 or self.window_ms <= 0:
            raise ConfigError("objective.options: apc needs shift >= 1, n_mels >= 1 and window_ms > 0")


class LogMel(nn.Module):
    """``log10`` mel spectrogram of a waveform ``[B, 1, samples]`` at the frames of ``frame``:
    ``[B, T, n_mels]``, frame ``t`` centred on sample ``frame.offset + t * frame.hop``."""

    def __init__(self, frame: FrameInfo, n_mels: int, window_ms: float, sample_rate: int) -> None:
        super().__init__()
        import librosa

        self.hop = frame.hop
        self.win = max(int(round(window_ms * sample_rate / 1000)), 2 * frame.hop)
        self.n_fft = int(2 ** np.ceil(np.log2(self.win)))
        # torch.stft centres the window in each n_fft-sample frame, so frame t starts at
        # offset + t * hop - n_fft / 2; pad so that frame 0's start is >= 0.
        start = frame.offset - self.n_fft / 2
        self.pad_left = max(0, int(np.ceil(-start)))
        self.first = int(round(start + self.pad_left))
        self.window: Tensor
        self.mel: Tensor
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        mel = librosa.filters.mel(sr=sample_rate, n_fft=self.n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
        self.register_buffer("mel", torch.from_numpy(mel.astype(np.float32)), persistent=False)

    def forward(self, audio: Tensor, n_frames: int) -> Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            x = audio[:, 0].float()
            need = self.first + (n_frames - 1) * self.hop + self.n_fft - (x.shape[-1] + self.pad_left)
            x = F.pad(x, (self.pad_left, max(0, need)))[:, self.first :]
            spec = torch.stft(
                x,
                self.n_fft,
                hop_length=self.hop,
                win_length=self.win,
                window=self.window,
                center=False,
                return_complex=True,
            )[..., :n_frames]  # [B, F, T]
            power = spec.real.pow(2) + spec.imag.pow(2)
            return torch.log10(self.mel @ power + LOG_FLOOR).transpose(1, 2)


@register_head("apc")
class APC(Head):
    """Predict the log-mel frame ``shift`` steps ahead from ``c_t`` with a linear layer; L1 loss."""

    Options = APCOptions

    def __init__(self, c_channels: int, options: APCOptions, frame: FrameInfo, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.shift = options.shift
        self.log_mel = LogMel(frame, options.n_mels, options.window_ms, sample_rate)
        self.predict = nn.Linear(c_channels, options.n_mels)

    @classmethod
    def build(cls, cfg: ObjectiveConfig, options: APCOptions, spec: HeadSpec) -> APC:
        return cls(spec.c_channels, options, spec.frame, spec.sample_rate)

    def forward(self, targets: Tensor, context: Tensor, batch: Batch) -> HeadOutput:
        n_time = context.shape[1]
        if n_time <= self.shift:
            raise ValueError(
                f"a sequence of {n_time} frames is too short to predict {self.shift} frames ahead; "
                "use longer crops or a smaller objective.options.shift"
            )
        mel = self.log_mel(batch.audio, n_time)  # [B, T, n_mels]
        future = mel[:, self.shift :]
        loss = F.l1_loss(self.predict(context[:, : -self.shift]).float(), future)
        with torch.no_grad():
            copy = F.l1_loss(mel[:, : -self.shift], future)
        return HeadOutput(loss=loss, stats={"apc_l1": loss.detach(), "apc_l1_copy": copy})
