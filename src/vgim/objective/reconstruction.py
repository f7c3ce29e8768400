"""Reconstruction as a head: ``objective.head = "reconstruction"`` decodes each module's ``c`` back to audio.

A :class:`Decoder` mirrors the encoder's conv/pool layers of modules ``0..m`` in reverse with transposed
convolutions (same kernel, stride and padding, so output sample ``i`` of a layer is built from exactly the
frames whose receptive field covers it; a max-pool layer is mirrored by a transposed convolution with the
pool's kernel and stride). It reads the module's representation ``c`` (``[batch, frames, channels]``) and
writes a waveform ``[batch, 1, samples]``; :class:`ReconstructionLoss` scores it against the batch's audio.

Trained on a frozen encoder (``train.mode = "frozen"``) these are the per-module decoders that
:func:`vgim.interpret.decoders.train_decoders` trains; trained end to end with a Gaussian bottleneck they
are the VAE baseline of the thesis's chapter 2 (preset ``vae-small``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vgim.config import LayerSpec, ModelConfig, ObjectiveConfig
from vgim.data.batches import Batch
from vgim.frames import SAMPLE_RATE
from vgim.model.geometry import conv_length, module_geometry, strided_layers
from vgim.objective.base import Head, HeadOutput, HeadSpec, register_head

__all__ = [
    "AudioDecoder",
    "Decoder",
    "ThesisMelLoss",
    "ReconstructionHead",
    "ReconstructionLoss",
    "ReconstructionOptions",
    "decoder_specs",
    "module_channels",
]


# ---------------------------------------------------------------------------------------------------------
# Architecture


def decoder_specs(cfg: ModelConfig, module: int) -> list[LayerSpec]:
    """The conv/pool layers of modules ``0..module`` in encoder order (the layers a decoder mirrors)."""
    return strided_layers(cfg, module)


def module_channels(cfg: ModelConfig, module: int) -> int:
    """Channels of module ``module``'s representation ``c`` (GRU hidden size, or its last conv's channels)."""
    if not 0 <= module < len(cfg.modules):
        raise ValueError(f"module must be in [0, {len(cfg.modules)}), got {module}")
    return module_geometry(cfg)[module].channels


class AudioDecoder(nn.Module):
    """What every per-module decoder is: it decodes module ``module_index``'s ``c`` and can turn that into a
    waveform, ``synthesize(c, length) -> [batch, 1, length]`` (what reconstructions, traversals and
    interpolations play)."""

    module_index: int

    def synthesize(self, c: Tensor, length: int) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def power_db(self, c: Tensor, length: int) -> np.ndarray:
        """The decoded sound's power spectrogram in dB, ``[batch, bins, frames]`` on the STFT of
        :func:`vgim.interpret.spectra.log_spectrogram` (what the log-spectral distance compares). This
        default synthesizes the waveform; a decoder that predicts that spectrogram can skip the synthesis."""
        from vgim.interpret.spectra import log_spectrogram

        with torch.no_grad():
            waves = self.synthesize(c, length)[:, 0].float().cpu().numpy()
        return np.stack([log_spectrogram(w) for w in waves])


class Decoder(AudioDecoder):
    """Transposed-convolution decoder of one module of a :class:`~vgim.model.Stack`.

    Parameters
    ----------
    cfg
        The encoder's :class:`~vgim.config.ModelConfig`; every size is derived from ``cfg.layers`` and
        ``cfg.modules``.
    module
        The module (0-based) whose representation ``c`` is decoded.
    hidden
        Channels of every intermediate layer.

    Notes
    -----
    Layer ``i`` of the decoder mirrors the encoder's ``i``-th conv/pool layer counted from the end:
    ``ConvTranspose1d(kernel, stride, padding)`` with that layer's kernel, stride and padding, ReLU in
    between, a linear last layer with ``cfg.in_channels`` output channels. Given the target length, each
    transposed convolution is told the encoder's length at that depth (``output_size``), so every
    intermediate length and the output length equal the encoder's; the output is then cropped or
    zero-padded to the target length (only needed when ``c`` does not come from a signal of that length).
    """

    def __init__(self, cfg: ModelConfig, module: int, hidden: int = 64) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.module_index = module
        self.hidden = hidden
        self.specs = decoder_specs(cfg, module)
        self.in_channels = module_channels(cfg, module)
        self.out_channels = cfg.in_channels
        layers: list[nn.ConvTranspose1d] = []
        reverse = list(reversed(self.specs))
        if not reverse:  # no conv/pool before this module: frames are samples, a 1x1 map is the mirror
            reverse = [LayerSpec("conv", cfg.in_channels, 1, 1, 0)]
        for i, spec in enumerate(reverse):
            c_in = self.in_channels if i == 0 else hidden
            c_out = self.out_channels if i == len(reverse) - 1 else hidden
            layers.append(nn.ConvTranspose1d(c_in, c_out, spec.kernel, spec.stride, spec.padding))
        self.layers = nn.ModuleList(layers)

    def encoder_lengths(self, n_samples: int) -> list[int]:
        """Lengths after each mirrored encoder layer for an input of ``n_samples``: ``[n_samples, ...]``."""
        lengths = [n_samples]
        for spec in self.specs:
            lengths.append(conv_length(lengths[-1], spec))
        return lengths

    def forward(self, c: Tensor, length: int | None = None) -> Tensor:
        """Decode ``c`` (``[batch, frames, channels]``) to a waveform ``[batch, in_channels, samples]``.

        ``length``: the number of samples to return (the length of the encoded signal); ``None`` keeps the
        transposed convolutions' natural length.
        """
        if c.dim() != 3 or c.shape[-1] != self.in_channels:
            raise ValueError(f"expected c of shape [batch, frames, {self.in_channels}], got {tuple(c.shape)}")
        h = c.transpose(1, 2)
        sizes: list[int] | None = None
        if length is not None and self.specs:
            lengths = self.encoder_lengths(length)
            if lengths[-1] == h.shape[-1]:
                sizes = lengths[::-1][1:]
        for i, layer in enumerate(self.layers):
            h = layer(h, output_size=[sizes[i]]) if sizes is not None else layer(h)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        if length is not None and h.shape[-1] != length:
            h = h[..., :length] if h.shape[-1] > length else nn.functional.pad(h, (0, length - h.shape[-1]))
        return h

    def synthesize(self, c: Tensor, length: int) -> Tensor:
        """The decoded waveform ``[batch, 1, length]`` (this decoder writes waveforms directly)."""
        return self.forward(c, length)


# ---------------------------------------------------------------------------------------------------------
# Loss and metrics


class ReconstructionLoss(nn.Module):
    """``wave_weight * MSE(y, x) + stft_weight * mean_n L1(log(|Y_n| + eps), log(|X_n| + eps))``.

    ``X_n`` is the STFT with FFT size ``n`` (Hann window of ``n`` samples, hop ``n / 4``) for every ``n`` in
    ``fft_sizes`` (sizes longer than the signal are skipped). Defaults: ``wave_weight = 10`` and
    ``stft_weight = 1``, ``fft_sizes = (512, 1024, 2048)``, ``eps = 1e-5``. The waveform term pins the phase
    (on speech at about -20 dBFS the MSE is ~1e-3, so the weight 10 keeps it from vanishing next to the
    log-magnitude term, which is of order 1 and carries the spectral detail).
    """

    def __init__(
        self,
        wave_weight: float = 10.0,
        stft_weight: float = 1.0,
        fft_sizes: Sequence[int] = (512, 1024, 2048),
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.wave_weight = wave_weight
        self.stft_weight = stft_weight
        self.fft_sizes = tuple(fft_sizes)
        self.eps = eps

    def describe(self) -> dict[str, Any]:
        return {
            "wave_weight": self.wave_weight,
            "stft_weight": self.stft_weight,
            "fft_sizes": list(self.fft_sizes),
            "eps": self.eps,
        }

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        """Loss of reconstruction ``y`` against target ``x``, both ``[batch, 1, samples]``; a scalar."""
        loss = self.wave_weight * nn.functional.mse_loss(y, x)
        a, b = y.reshape(-1, y.shape[-1]), x.reshape(-1, x.shape[-1])
        sizes = [n for n in self.fft_sizes if n <= a.shape[-1]]
        if self.stft_weight > 0 and sizes:
            spectral = torch.zeros((), device=y.device)
            for n in sizes:
                window = torch.hann_window(n, device=y.device)
                ya = torch.stft(a, n, n // 4, window=window, return_complex=True).abs()
                xb = torch.stft(b, n, n // 4, window=window, return_complex=True).abs()
                spectral = spectral + (torch.log(ya + self.eps) - torch.log(xb + self.eps)).abs().mean()
            loss = loss + self.stft_weight * spectral / len(sizes)
        return loss


class ThesisMelLoss(nn.Module):
    """The V-GIM thesis's decoder loss: MSE between ``log10`` mel spectrograms of the reconstruction and the
    original (``n_fft`` 4096, hop 2048, 128 mel bands, Hann window, centred frames with reflect padding,
    power 2: torchaudio's ``MelSpectrogram`` defaults otherwise; ``log10(mel + 1e-10)``)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 4096, hop: int = 2048, n_mels: int = 128) -> None:
        super().__init__()
        import librosa

        self.n_fft, self.hop = n_fft, hop
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None)
        self.mel: Tensor
        self.window: Tensor
        self.register_buffer("mel", torch.from_numpy(mel.astype("float32")), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def describe(self) -> dict[str, Any]:
        return {"loss": "log10-mel MSE (thesis)", "n_fft": self.n_fft, "hop": self.hop, "n_mels": self.mel.shape[0]}

    def log_mel(self, x: Tensor) -> Tensor:
        a = x.reshape(-1, x.shape[-1]).float()
        pad = self.n_fft // 2
        a = nn.functional.pad(a[:, None], (pad, pad), mode="reflect" if a.shape[-1] > pad else "constant")[:, 0]
        spec = torch.stft(a, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        return torch.log10(self.mel @ spec.abs().pow(2) + 1e-10)

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        """Loss of reconstruction ``y`` against target ``x``, both ``[batch, 1, samples]``; a scalar."""
        return nn.functional.mse_loss(self.log_mel(y), self.log_mel(x))


@dataclass
class ReconstructionOptions:
    """``hidden``: channels of the decoder's hidden layers; ``loss``: ``"stft"`` (:class:`ReconstructionLoss`,
    with its weights) or ``"thesis"`` (:class:`ThesisMelLoss`, the V-GIM thesis's log10-mel MSE)."""

    hidden: int = 64
    loss: str = "stft"
    wave_weight: float = 10.0
    stft_weight: float = 1.0

    def check(self) -> None:
        from vgim.config import ConfigError

        if self.hidden < 1 or self.wave_weight < 0 or self.stft_weight < 0:
            raise ConfigError("objective.options: reconstruction needs hidden >= 1 and weights >= 0")
        if self.loss not in ("stft", "thesis"):
            raise ConfigError(f"objective.options.loss: reconstruction takes 'stft' or 'thesis', got {self.loss!r}")


@register_head("reconstruction")
class ReconstructionHead(Head):
    """Decode the module's ``c`` to the batch's waveform; stats ``recon`` (the loss) and ``mse``."""

    Options = ReconstructionOptions

    def __init__(
        self, model: ModelConfig, module: int, options: ReconstructionOptions, sample_rate: int = SAMPLE_RATE
    ) -> None:
        super().__init__()
        self.decoder = Decoder(model, module, options.hidden)
        self.loss_fn: ReconstructionLoss | ThesisMelLoss = (
            ReconstructionLoss(options.wave_weight, options.stft_weight)
            if options.loss == "stft"
            else ThesisMelLoss(sample_rate)
        )

    @classmethod
    def build(cls, cfg: ObjectiveConfig, options: ReconstructionOptions, spec: HeadSpec) -> ReconstructionHead:
        if spec.model is None:
            raise ValueError("the reconstruction head needs the encoder's ModelConfig (HeadSpec.model)")
        return cls(spec.model, spec.module, options, spec.sample_rate)

    def forward(self, targets: Tensor, context: Tensor, batch: Batch) -> HeadOutput:
        x = batch.audio
        y = self.decoder(context, x.shape[-1])
        loss = self.loss_fn(y, x)
        with torch.no_grad():
            mse = nn.functional.mse_loss(y, x)
        return HeadOutput(loss=loss, stats={"recon": loss.detach(), "mse": mse})
