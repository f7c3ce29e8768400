"""Decode a module's ``c`` to a log-magnitude spectrogram: ``objective.head = "spectrogram"``.

The default per-module decoder of :mod:`vgim.interpret.decoders` (docs/decoders.md compares it with the
waveform decoders). A waveform cannot be predicted from what a module keeps: its phase is mostly not kept,
so a decoder trained on waveform error learns to output little more than silence. A magnitude spectrogram
can, and the phase is then estimated by Griffin-Lim (librosa), as speech synthesis did before neural
vocoders.

:class:`SpectrogramDecoder` reads ``c`` (``[batch, frames, channels]``) at the module's frame rate,
standardises each channel (batch norm), resamples it linearly to the frames of an STFT (frame ``j``
centred on sample ``j * hop``; the module's frame ``t`` sits at ``frame.offset + t * frame.hop``), runs
residual convolutions over time and writes ``log(|STFT| + 1e-5)`` for every frequency bin. The loss is the
L1 distance of the log magnitudes plus ``mel_weight`` times the L1 distance of the log-mel spectra (more
weight where hearing resolves detail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgim.config import ObjectiveConfig
from vgim.data.batches import Batch
from vgim.frames import FrameInfo
from vgim.objective.base import Head, HeadOutput, HeadSpec, register_head
from vgim.objective.reconstruction import AudioDecoder

__all__ = ["SpectrogramDecoder", "SpectrogramHead", "SpectrogramOptions", "griffin_lim"]

#: Magnitude floor of the log spectrum: ``log(|X| + 1e-5)`` (-100 dB, the floor of the log-spectral distance).
MAG_FLOOR = 1e-5


@dataclass
class SpectrogramOptions:
    """``hidden`` channels and ``blocks`` residual blocks of ``kernel`` frames; the STFT (``n_fft``, ``hop``)
    it predicts; ``mel_weight`` and ``n_mels`` of the log-mel term; ``griffin_lim_iters`` for synthesis."""

    hidden: int = 256
    blocks: int = 6
    kernel: int = 5
    n_fft: int = 512
    hop: int = 128
    mel_weight: float = 1.0
    n_mels: int = 80
    griffin_lim_iters: int = 32

    def check(self) -> None:
        from vgim.config import ConfigError

        if min(self.hidden, self.kernel, self.n_fft, self.hop, self.n_mels, self.griffin_lim_iters) < 1:
            raise ConfigError("objective.options: spectrogram needs positive sizes and iterations")
        if self.blocks < 0 or self.mel_weight < 0:
            raise ConfigError("objective.options: spectrogram needs blocks >= 0 and mel_weight >= 0")
        if self.kernel % 2 == 0:
            raise ConfigError(f"objective.options: spectrogram needs an odd kernel, got {self.kernel}")
        if self.hop > self.n_fft:
            raise ConfigError(f"objective.options: spectrogram needs hop <= n_fft, got {self.hop} > {self.n_fft}")


def griffin_lim(magnitude: np.ndarray, options: SpectrogramOptions, length: int) -> np.ndarray:
    """``length`` samples with STFT magnitudes ``magnitude`` ``[bins, frames]`` (``options``' STFT): librosa's
    Griffin-Lim, ``options.griffin_lim_iters`` iterations, momentum 0.99, a fixed random start (repeatable)."""
    import librosa

    o = options
    return np.asarray(
        librosa.griffinlim(
            magnitude, n_iter=o.griffin_lim_iters, hop_length=o.hop, n_fft=o.n_fft, length=length, random_state=0
        )
    )


class SpectrogramDecoder(AudioDecoder):
    """One module's ``c`` to ``log(|STFT| + 1e-5)`` (``[batch, n_fft // 2 + 1, frames]``); see the module
    docstring. :meth:`synthesize` turns it into a waveform with Griffin-Lim."""

    def __init__(
        self, c_channels: int, frame: FrameInfo, module: int, options: SpectrogramOptions, sample_rate: int
    ) -> None:
        super().__init__()
        self.module_index = module
        self.in_channels = c_channels
        self.frame = frame
        self.options = options
        self.sample_rate = sample_rate
        h, k = options.hidden, options.kernel
        # the encoders' features come at any scale (a GIM module's ReLU outputs, a V-GIM module's unit-variance
        # means): standardise each channel (batch statistics in training, their running means in eval)
        self.norm = nn.BatchNorm1d(c_channels)
        self.inp = nn.Conv1d(c_channels, h, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.GELU(), nn.Conv1d(h, h, k, padding=k // 2), nn.GELU(), nn.Conv1d(h, h, 1))
            for _ in range(options.blocks)
        )
        self.out = nn.Sequential(nn.GELU(), nn.Conv1d(h, options.n_fft // 2 + 1, 1))
        self.window: Tensor
        self.register_buffer("window", torch.hann_window(options.n_fft), persistent=False)

    def n_stft_frames(self, length: int) -> int:
        """Frames of the centred STFT of ``length`` samples."""
        return length // self.options.hop + 1

    def target(self, audio: Tensor) -> Tensor:
        """``log(|STFT| + 1e-5)`` of ``audio`` ``[batch, 1, samples]``: ``[batch, bins, frames]`` (fp32)."""
        with torch.autocast(audio.device.type, enabled=False):
            x = audio[:, 0].float()
            n = self.options.n_fft
            if x.shape[-1] <= n // 2:  # reflect padding needs a longer signal
                x = F.pad(x, (0, n // 2 + 1 - x.shape[-1]))
            spec = torch.stft(x, n, self.options.hop, window=self.window, return_complex=True).abs()
            return torch.log(spec + MAG_FLOOR)[..., : self.n_stft_frames(audio.shape[-1])]

    def forward(self, c: Tensor, length: int) -> Tensor:
        """Log magnitudes ``[batch, bins, frames]`` of the STFT of ``length`` samples, from ``c`` ``[B, T, C]``."""
        if c.dim() != 3 or c.shape[-1] != self.in_channels:
            raise ValueError(f"expected c of shape [batch, frames, {self.in_channels}], got {tuple(c.shape)}")
        h = self.inp(self.norm(c.transpose(1, 2)))
        n_time = h.shape[-1]
        # where each STFT frame falls on the module's frame axis (fractional index), for linear resampling
        centres = torch.arange(self.n_stft_frames(length), device=c.device, dtype=torch.float32) * self.options.hop
        u = ((centres - self.frame.offset) / self.frame.hop).clamp(0, n_time - 1)
        i0 = u.floor().long()
        i1 = (i0 + 1).clamp(max=n_time - 1)
        a = (u - i0).to(h.dtype)
        h = h[..., i0] * (1 - a) + h[..., i1] * a
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).float().clamp(max=10.0)

    @torch.no_grad()
    def synthesize(self, c: Tensor, length: int) -> Tensor:
        """A waveform ``[batch, 1, length]``: the predicted magnitudes (``exp(prediction) - 1e-5``, at least 0)
        with Griffin-Lim phases (librosa, ``griffin_lim_iters`` iterations, momentum 0.99, a fixed random start
        so the output is repeatable)."""
        # invert log(|X| + floor) exactly, so that a predicted floor is silence (not a -100 dB noise bed)
        mags = (self.forward(c, length).exp() - MAG_FLOOR).clamp(min=0.0).cpu().numpy().astype(np.float64)
        waves = [griffin_lim(m, self.options, length) for m in mags]
        return torch.from_numpy(np.stack(waves).astype(np.float32)).unsqueeze(1).to(c.device)

    @torch.no_grad()
    def power_db(self, c: Tensor, length: int) -> np.ndarray:
        """The predicted power spectrogram in dB (no synthesis) when this decoder predicts the STFT of the
        log-spectral distance (the default ``n_fft`` and ``hop``); otherwise the synthesized sound's."""
        from vgim.interpret.spectra import LSD_EPS, LSD_HOP, LSD_N_FFT

        if (self.options.n_fft, self.options.hop) != (LSD_N_FFT, LSD_HOP):
            return super().power_db(c, length)
        mag = (self.forward(c, length).exp() - MAG_FLOOR).clamp(min=0.0).double()
        return np.asarray((10.0 * torch.log10(mag**2 + LSD_EPS)).cpu().numpy())


@register_head("spectrogram")
class SpectrogramHead(Head):
    """Predict the log-magnitude STFT of the batch's audio from the module's ``c``; stats ``spec_l1``
    (log-magnitude L1) and ``mel_l1`` (log-mel L1)."""

    Options = SpectrogramOptions

    def __init__(self, spec: HeadSpec, options: SpectrogramOptions) -> None:
        super().__init__()
        import librosa

        self.decoder = SpectrogramDecoder(spec.c_channels, spec.frame, spec.module, options, spec.sample_rate)
        self.mel_weight = options.mel_weight
        mel = librosa.filters.mel(sr=spec.sample_rate, n_fft=options.n_fft, n_mels=options.n_mels)
        self.mel: Tensor
        self.register_buffer("mel", torch.from_numpy(mel.astype(np.float32)), persistent=False)

    @classmethod
    def build(cls, cfg: ObjectiveConfig, options: SpectrogramOptions, spec: HeadSpec) -> SpectrogramHead:
        return cls(spec, options)

    def forward(self, targets: Tensor, context: Tensor, batch: Batch) -> HeadOutput:
        x = batch.audio
        target = self.decoder.target(x)
        pred = self.decoder(context, x.shape[-1])
        spec_l1 = F.l1_loss(pred, target)
        with torch.autocast(x.device.type, enabled=False):
            mel_l1 = F.l1_loss(
                torch.log(self.mel @ pred.exp() + MAG_FLOOR), torch.log(self.mel @ target.exp() + MAG_FLOOR)
            )
        loss = spec_l1 + self.mel_weight * mel_l1
        return HeadOutput(loss=loss, stats={"spec_l1": spec_l1.detach(), "mel_l1": mel_l1.detach()})
