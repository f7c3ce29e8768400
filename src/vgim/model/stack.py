"""The encoder stack shared by CPC, GIM and V-GIM.

An encoder is an ordered list of layers (strided ``Conv1d`` + ReLU, ``MaxPool1d``, and optionally a GRU as
the autoregressive model ``g_ar``) grouped into *modules*. Between modules the gradient can be cut
(GIM). Each module's latent passes a bottleneck (:mod:`vgim.model.bottleneck`): identity (CPC, GIM), Gaussian
(V-GIM: a mean ``mu`` and log-variance ``logvar``, ``z = mu + sigma * eps`` while training) or a VQ
codebook. The losses live in :mod:`vgim.objective`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vgim.config import Config, LayerSpec, ModelConfig
from vgim.frames import SAMPLE_RATE, FrameInfo
from vgim.model.bottleneck import Gaussian, build_bottleneck
from vgim.model.geometry import local_geometry, module_geometry, n_frames

__all__ = ["FrameInfo", "GIMModule", "Gabor", "ModuleOutput", "Stack", "frame_infos", "n_frames"]


def frame_infos(cfg: ModelConfig) -> list[FrameInfo]:
    """Hop, centre offset and receptive field after each module, derived from the layer specs."""
    return [g.frame for g in module_geometry(cfg)]


@dataclass
class ModuleOutput:
    """What one module returns (all ``[batch, time, channels]``).

    ``z``: the module's latent ``z_t`` (sampled when variational and sampling, else ``mu``); the targets
    of InfoNCE. ``c``: the context ``c_t`` that predicts the future (GRU output, or ``z`` itself when the
    module has no GRU). ``mu``/``logvar``: the posterior parameters of a variational module, else None.
    ``penalty`` (a scalar) and ``stats`` come from the module's bottleneck; ``codes`` (``[batch, time]``)
    are a quantiser's code indices, else None. The module's representation, passed to the next module and
    used as features, is ``c``.
    """

    z: Tensor
    c: Tensor
    mu: Tensor | None = None
    logvar: Tensor | None = None
    penalty: Tensor | None = None
    stats: dict[str, Tensor] = field(default_factory=dict)
    codes: Tensor | None = None

    def float(self) -> ModuleOutput:
        """The outputs in float32 (the objective's dtype) after an autocast forward pass."""

        def up(x: Tensor | None) -> Tensor | None:
            return x.float() if x is not None else None

        return dataclasses.replace(
            self, z=self.z.float(), c=self.c.float(), mu=up(self.mu), logvar=up(self.logvar), penalty=up(self.penalty)
        )

    @property
    def representation(self) -> Tensor:
        return self.c


class _Conv(nn.Module):
    def __init__(self, spec: LayerSpec, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, spec.channels, spec.kernel, spec.stride, spec.padding)
        self.norm = nn.LayerNorm(spec.channels) if spec.norm == "layer" else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm is not None:  # over the channels of each frame: [B, C, T] -> [B, T, C] and back
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        # In place: neither the convolution nor LayerNorm needs its output for the backward, so the
        # pre-activation need not be held beside the activation (the first layer's is the largest tensor).
        return torch.relu_(x)


GABOR_MIN_WIDTH = 1.0  # samples
LOG_FLOOR = 1e-6  # energy floor of the gabor layer's log (60 dB below a full-scale band)


def mel_gabor_init(n_filters: int, kernel: int, sample_rate: int = SAMPLE_RATE) -> tuple[Tensor, Tensor]:
    """Centre frequencies (radians per sample) and time widths (samples) of ``n_filters`` Gabor filters
    spaced on the mel scale from 60 Hz to 7.8 kHz (at ``sample_rate``), each as wide in frequency as the
    spacing of its neighbours (its half-power bandwidth), the width capped so the filter fits ``kernel``."""
    top = min(7800.0, 0.49 * sample_rate)
    mel = np.linspace(2595 * np.log10(1 + 60 / 700), 2595 * np.log10(1 + top / 700), n_filters + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    centre = 2 * np.pi * hz[1:-1] / sample_rate
    bandwidth = 2 * np.pi * (hz[2:] - hz[:-2]) / 2 / sample_rate  # rad/sample, about the neighbour spacing
    width = np.clip(2 * np.sqrt(2 * np.log(2)) / bandwidth, GABOR_MIN_WIDTH, kernel / 6)
    return torch.tensor(centre, dtype=torch.float32), torch.tensor(width, dtype=torch.float32)


class Gabor(nn.Module):
    """Learnable complex Gabor filter bank and log energy (see :class:`~vgim.config.LayerSpec`)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        centre, width = mel_gabor_init(spec.channels, spec.kernel)
        self.centre = nn.Parameter(centre)
        self.width = nn.Parameter(width)
        self.kernel, self.stride, self.padding = spec.kernel, spec.stride, spec.padding
        self.norm = nn.LayerNorm(spec.channels) if spec.norm == "layer" else None
        self.t: Tensor
        t = torch.arange(spec.kernel, dtype=torch.float32) - (spec.kernel - 1) / 2  # sample times, centred
        self.register_buffer("t", t, persistent=False)

    def filters(self) -> tuple[Tensor, Tensor]:
        """The real and imaginary parts of the filters, each ``[channels, kernel]``."""
        centre = self.centre.clamp(0.0, float(np.pi))
        width = self.width.clamp(GABOR_MIN_WIDTH, self.kernel / 2)
        t = self.t[None, :]
        envelope = torch.exp(-0.5 * (t / width[:, None]) ** 2) / (np.sqrt(2 * np.pi) * width[:, None])
        phase = centre[:, None] * t
        return envelope * torch.cos(phase), envelope * torch.sin(phase)

    @property
    def weight(self) -> Tensor:
        """The real parts as a ``Conv1d``-shaped weight ``[channels, 1, kernel]`` (for plots of the filters)."""
        return self.filters()[0][:, None, :]

    def forward(self, x: Tensor) -> Tensor:
        real, imag = self.filters()
        y = nn.functional.conv1d(x, torch.cat([real, imag])[:, None, :], stride=self.stride, padding=self.padding)
        re, im = y.chunk(2, dim=1)
        x = torch.log(re * re + im * im + LOG_FLOOR)
        if self.norm is not None:
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x


class GIMModule(nn.Module):
    """A gradient-isolated module: optional conv/pool layers, a bottleneck, optional GRU.

    The bottleneck (:mod:`vgim.model.bottleneck`: identity, Gaussian for V-GIM, VQ) sits on the output of
    the module's last conv/pool layer, so ``z`` is its output and the GRU (if any) reads it. A module made
    of a GRU alone has no latent of its own and no bottleneck: its targets ``z`` are its input.
    """

    def __init__(
        self,
        specs: list[LayerSpec],
        in_channels: int,
        bottleneck: str = "identity",
        bottleneck_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        self.ar: nn.GRU | None = None
        for spec in specs:
            if spec.kind == "conv":
                layers.append(_Conv(spec, channels))
                channels = spec.channels
            elif spec.kind == "gabor":
                layers.append(Gabor(spec))
                channels = spec.channels
            elif spec.kind == "maxpool":
                layers.append(nn.MaxPool1d(spec.kernel, spec.stride, spec.padding))
            else:
                self.ar = nn.GRU(channels, spec.channels, batch_first=True)
        self.encoder = nn.Sequential(*layers)
        # Geometry of the conv/pool part in input frames: output frame j reads inputs
        # [j * hop - left, j * hop - left + field).
        self.hop, self.field, self.left = local_geometry(specs)
        self.z_channels = channels
        self.bottleneck = build_bottleneck(bottleneck if layers else "identity", bottleneck_options or {}, channels)
        self.variational = isinstance(self.bottleneck, Gaussian)
        self.out_channels = self.ar.hidden_size if self.ar is not None else channels

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # Runs saved before the bottlenecks kept V-GIM's head as ``mu`` / ``logvar`` of the module itself.
        for name in ("mu", "logvar"):
            for part in ("weight", "bias"):
                old = f"{prefix}{name}.{part}"
                if old in state_dict:
                    state_dict[f"{prefix}bottleneck.{name}.{part}"] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode_chunked(self, x: Tensor, chunk_frames: int) -> Tensor:
        """The conv/pool part on a long input, ``chunk_frames`` output frames at a time; equals
        ``self.encoder(x)``. Each chunk reads a margin of input on both sides and starts on a multiple of
        the hop, so its frames line up with the whole-signal frames and no padding effect reaches them."""
        n_in = x.shape[-1]
        margin = -(-self.field // self.hop) + 1
        pieces: list[Tensor] = []
        j0 = 0
        while True:
            k = max(0, j0 - margin)
            end = min(n_in, (j0 + chunk_frames + margin) * self.hop + self.field)
            h = self.encoder(x[..., k * self.hop : end])
            last_chunk = end >= n_in
            stop = h.shape[-1] if last_chunk else j0 + chunk_frames - k
            pieces.append(h[..., j0 - k : stop])
            if last_chunk:
                break
            j0 += chunk_frames
        return torch.cat(pieces, dim=-1)

    def forward(self, x: Tensor, sample: bool = True, chunk_frames: int = 0) -> ModuleOutput:
        """``x`` is ``[batch, channels_in, time_in]``; returns a :class:`ModuleOutput`.

        ``chunk_frames > 0`` runs the convolutions in chunks to bound memory on long inputs (inference).
        """
        if chunk_frames > 0 and len(self.encoder) and x.shape[-1] > chunk_frames * self.hop * 2:
            h = self.encode_chunked(x, chunk_frames)
        else:
            h = self.encoder(x)
        b = self.bottleneck(h, sample)
        z = b.z.transpose(1, 2)
        c = self.ar(z)[0] if self.ar is not None else z
        return ModuleOutput(z=z, c=c, mu=b.mu, logvar=b.logvar, penalty=b.penalty, stats=b.stats, codes=b.codes)


class Stack(nn.Module):
    """The whole encoder: a list of :class:`GIMModule` built from a :class:`ModelConfig`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.config: Config | None = None  # the full run config, set by vgim.load
        blocks: list[GIMModule] = []
        channels = cfg.in_channels
        i = 0
        for n_layers in cfg.modules:
            block = GIMModule(cfg.layers[i : i + n_layers], channels, cfg.bottleneck, cfg.bottleneck_options)
            blocks.append(block)
            channels = block.out_channels
            i += n_layers
        self.blocks = nn.ModuleList(blocks)
        self.frames = frame_infos(cfg)

    @property
    def n_modules(self) -> int:
        return len(self.blocks)

    def block(self, m: int) -> GIMModule:
        block = self.blocks[m]
        assert isinstance(block, GIMModule)
        return block

    def n_frames(self, n_samples: int) -> list[int]:
        return n_frames(self.cfg, n_samples)

    def forward(
        self,
        x: Tensor,
        *,
        cut_gradients: bool = True,
        sample: bool | None = None,
        upto: int | None = None,
        frozen_below: int = 0,
        chunk_frames: int = 0,
    ) -> list[ModuleOutput]:
        """Run ``x`` (``[batch, 1, samples]``) through modules ``0..upto`` (all by default).

        ``cut_gradients`` detaches each module's input (GIM); ``frozen_below = m`` runs modules before
        ``m`` without autograd, so their activations are not held for a backward pass. ``sample``
        defaults to ``self.training``: variational modules sample while training and use ``mu`` otherwise.
        """
        if x.dim() != 3 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected audio of shape [batch, {self.cfg.in_channels}, samples], got {tuple(x.shape)}")
        do_sample = self.training if sample is None else sample
        last = self.n_modules - 1 if upto is None else upto
        outputs: list[ModuleOutput] = []
        h = x
        for m in range(last + 1):
            block = self.block(m)
            if m < frozen_below:
                with torch.no_grad():
                    out = block(h, sample=do_sample, chunk_frames=chunk_frames)
            else:
                out = block(h.detach() if cut_gradients and m > 0 else h, sample=do_sample, chunk_frames=chunk_frames)
            outputs.append(out)
            h = out.c.transpose(1, 2)
        return outputs

    @torch.no_grad()
    def encode_wave(
        self,
        wave: np.ndarray | Tensor,
        sample_rate: int = SAMPLE_RATE,
        upto: int | None = None,
        chunk_frames: int = 2000,
    ) -> list[ModuleOutput]:
        """Deterministic outputs of modules ``0..upto`` (``None``: all) for one waveform, in eval mode.

        ``wave`` is ``[samples]`` (mono) at ``sample_rate``; it is resampled to 16 kHz when needed. Returns
        one :class:`ModuleOutput` per module with batch dimension 1 (no sampling: ``z = mu`` for a
        variational module). The training/eval mode is restored afterwards. Convolutions run
        ``chunk_frames`` frames at a time (0: all at once), so files of any length fit in memory. Raises
        ValueError for a wave that is not 1-D, an ``upto`` out of range or a wave shorter than the
        receptive field.
        """
        from vgim.audio import resample

        last = self.n_modules - 1 if upto is None else upto
        if not 0 <= last < self.n_modules:
            raise ValueError(f"module {upto} out of range: the model has modules 0..{self.n_modules - 1}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if isinstance(wave, Tensor):
            wave = wave.detach().cpu().numpy()
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape [samples], got {wave.shape}")
        if sample_rate != SAMPLE_RATE:
            wave = resample(wave, sample_rate, SAMPLE_RATE)
        if wave.shape[0] < self.frames[last].receptive_field or min(self.n_frames(wave.shape[0])[: last + 1]) < 1:
            raise ValueError(
                f"waveform has {wave.shape[0]} samples at 16 kHz: too short for this model "
                f"(receptive field {self.frames[last].receptive_field} samples)"
            )
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            x = torch.from_numpy(wave).to(device).view(1, 1, -1)
            return self.forward(x, sample=False, upto=last, chunk_frames=chunk_frames)
        finally:
            self.train(was_training)

    def extract_features(
        self, wave: np.ndarray | Tensor, sample_rate: int = SAMPLE_RATE, chunk_frames: int = 2000
    ) -> list[Tensor]:
        """Every module's deterministic representation for one waveform: one ``[time_m, channels_m]``
        tensor per module (variational modules give their mean); see :meth:`encode_wave`."""
        return [o.c[0] for o in self.encode_wave(wave, sample_rate, chunk_frames=chunk_frames)]
