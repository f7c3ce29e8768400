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

__all__ = ["SILENT_DB", "SpectrogramDecoder", "SpectrogramHead", "SpectrogramOptions", "griffin_lim", "silence_gate"]

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


#: A frame whose loudest bin is below this power (dB, ``20 log10 |X|`` of the Hann-windowed STFT of audio at
#: full scale 1) counts as digital silence in :func:`silence_gate`: 12 dB below the bin of a tone of one
#: 16-bit step (``2**-15``, ``20 log10(n_fft / 4 * 2**-15)`` = -48 dB at ``n_fft`` 512), so quieter than
#: anything a 16-bit file holds. (A full-scale tone's bin is near +42 dB; a -70 dBFS noise floor's near -48.)
SILENT_DB = -60.0
#: Samples of the raised-cosine fade at each edge of a silenced stretch (2 ms at 16 kHz), so it does not click.
FADE = 32


def silence_gate(magnitude: np.ndarray, options: SpectrogramOptions, length: int) -> np.ndarray:
    """A ``[length]`` gain that is 0 wherever ``magnitude`` (``[bins, frames]``) says the audio is silent.

    An STFT frame that is exactly zero means every sample under its window is zero (the window is positive
    inside), so each frame whose loudest bin is below :data:`SILENT_DB` zeroes the ``n_fft - 1`` samples its
    window covers, with a :data:`FADE`-sample fade on the sounding side. A quiet frame beside a sound, its
    window's tail touching the sound's first or last samples at a weight near 0, trims the sound there (a
    few samples plus the fade). Griffin-Lim alone cannot honour a silent frame beside a loud one: the loud
    frame's window overlaps it, and its estimated phases spread energy into the silence (tens of dB above
    the digital silence of, e.g., espeak's word edges)."""
    o = options
    gain = np.ones(length)
    frames = np.flatnonzero(20.0 * np.log10(magnitude.max(axis=0) + 1e-12) < SILENT_DB)
    if frames.size == 0:
        return gain
    half = o.n_fft // 2
    silent = np.zeros(length, dtype=bool)
    for j in frames:
        c = int(j) * o.hop
        silent[max(0, c - half + 1) : max(0, min(length, c + half))] = True
    gain[silent] = 0.0
    # fade in/out over FADE samples outside every silent stretch
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(1, FADE + 1) / (FADE + 1)))  # rises from ~0 to ~1
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))  # a stretch starts after or ends at these indices
    for e in (int(i) for i in edges):
        if silent[e]:  # silence ends at e: fade in over e+1 ..
            lo, hi = e + 1, min(length, e + 1 + FADE)
            gain[lo:hi] = np.minimum(gain[lo:hi], ramp[: hi - lo])
        else:  # silence starts at e+1: fade out over .. e
            lo, hi = max(0, e + 1 - FADE), e + 1
            gain[lo:hi] = np.minimum(gain[lo:hi], ramp[::-1][FADE - (hi - lo) :])
    return gain


def griffin_lim(magnitude: np.ndarray, options: SpectrogramOptions, length: int) -> np.ndarray:
    """``length`` samples with STFT magnitudes ``magnitude`` ``[bins, frames]`` (``options``' STFT): librosa's
    Griffin-Lim, ``options.griffin_lim_iters`` iterations, momentum 0.99, a fixed random start (repeatable),
    then the frames that ``magnitude`` says are digitally silent made silent (:func:`silence_gate`)."""
    import librosa

    o = options
    wave = librosa.griffinlim(
        magnitude, n_iter=o.griffin_lim_iters, hop_length=o.hop, n_fft=o.n_fft, length=length, random_state=0
    )
    return np.asarray(wave * silence_gate(magnitude, o, length), dtype=wave.dtype)


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
    def magnitudes(self, c: Tensor, length: int) -> np.ndarray:
        """The predicted STFT magnitudes ``[batch, bins, frames]`` (float64): ``exp(prediction) - 1e-5``, at
        least 0, which inverts ``log(|X| + 1e-5)`` exactly, so that a predicted floor is silence (not a
        -100 dB noise bed)."""
        return np.asarray((self.forward(c, length).exp() - MAG_FLOOR).clamp(min=0.0).double().cpu().numpy())

    @torch.no_grad()
    def synthesize(self, c: Tensor, length: int) -> Tensor:
        """A waveform ``[batch, 1, length]``: :meth:`magnitudes` with Griffin-Lim phases (:func:`griffin_lim`:
        librosa, ``griffin_lim_iters`` iterations, momentum 0.99, a fixed random start so the output is
        repeatable, then the silence gate)."""
        waves = [griffin_lim(m, self.options, length) for m in self.magnitudes(c, length)]
        return torch.from_numpy(np.stack(waves).astype(np.float32)).unsqueeze(1).to(c.device)

    @torch.no_grad()
    def power_db(self, c: Tensor, length: int) -> np.ndarray:
        """The predicted power spectrogram in dB (no synthesis) when this decoder predicts the STFT of the
        log-spectral distance (the default ``n_fft`` and ``hop``); otherwise the synthesized sound's."""
        from vgim.interpret.spectra import LSD_EPS, LSD_HOP, LSD_N_FFT

        if (self.options.n_fft, self.options.hop) != (LSD_N_FFT, LSD_HOP):
            return super().power_db(c, length)
        return np.asarray(10.0 * np.log10(self.magnitudes(c, length) ** 2 + LSD_EPS))


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
