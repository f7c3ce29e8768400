"""The one walk over the layer specs: lengths, hop, frame centres, receptive field and channels per module.

Everything that needs to know where a module's frames sit or how many there are (the stack, the heads, the
decoders, pooling, the benchmark) asks here; nothing else multiplies strides. Frame ``t`` of module ``m`` is
centred on sample ``offset_m + t * hop_m`` (:class:`~vgim.frames.FrameInfo`), and the hop is the product of
the strides of the conv/pool layers up to and including that module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vgim.config import LayerSpec, ModelConfig
from vgim.frames import SAMPLE_RATE, FrameInfo

# SAMPLE_RATE lives in the leaf module vgim.frames; it is re-exported here for older imports.
__all__ = [
    "SAMPLE_RATE",
    "ModuleGeometry",
    "conv_length",
    "local_geometry",
    "module_geometry",
    "n_frames",
    "strided_layers",
]


def conv_length(n_in: int, spec: LayerSpec) -> int:
    """Output length of a conv/pool layer on ``n_in`` frames (0 when the input is too short)."""
    return max(0, (n_in + 2 * spec.padding - spec.kernel) // spec.stride + 1)


@dataclass(frozen=True)
class ModuleGeometry:
    """Module ``index``: where its frames sit (``frame``), its layers ``cfg.layers[first:last]``, the
    channels of its latent ``z`` and of its representation ``c`` (the GRU's hidden size, when it has one)."""

    index: int
    frame: FrameInfo
    first: int
    last: int
    z_channels: int
    channels: int


def module_geometry(cfg: ModelConfig) -> list[ModuleGeometry]:
    """Every module's geometry, walking ``cfg.layers`` once."""
    hop, offset, field = 1, 0.0, 1
    channels = cfg.in_channels
    out: list[ModuleGeometry] = []
    first = 0
    for m, n_layers in enumerate(cfg.modules):
        z_channels = channels
        gru = None
        for spec in cfg.layers[first : first + n_layers]:
            if spec.strided:
                field += (spec.kernel - 1) * hop
                offset += ((spec.kernel - 1) / 2 - spec.padding) * hop
                hop *= spec.stride
            if spec.filters:
                z_channels = spec.channels
            elif spec.kind == "gru":
                gru = spec.channels
        if cfg.bottleneck == "gaussian" and any(s.kind != "gru" for s in cfg.layers[first : first + n_layers]):
            # a wider-than-1x1 Gaussian head ("same" padded, stride 1) widens the receptive field only
            field += (int(cfg.bottleneck_options.get("kernel", 1)) - 1) * hop
        channels = gru if gru is not None else z_channels
        out.append(ModuleGeometry(m, FrameInfo(hop, offset, field), first, first + n_layers, z_channels, channels))
        first += n_layers
    return out


def n_frames(cfg: ModelConfig, n_samples: int) -> list[int]:
    """Number of frames each module outputs for an input of ``n_samples`` samples (0 if too short)."""
    length = n_samples
    out: list[int] = []
    for g in module_geometry(cfg):
        for spec in cfg.layers[g.first : g.last]:
            if spec.strided:
                length = conv_length(length, spec)
        out.append(length)
    return out


def strided_layers(cfg: ModelConfig, module: int) -> list[LayerSpec]:
    """The conv/pool layers of modules ``0..module`` in encoder order (what a decoder of it mirrors)."""
    if not 0 <= module < len(cfg.modules):
        raise ValueError(f"module must be in [0, {len(cfg.modules)}), got {module}")
    return [s for s in cfg.layers[: module_geometry(cfg)[module].last] if s.strided]


def local_geometry(specs: Sequence[LayerSpec]) -> tuple[int, int, int]:
    """``(hop, field, left)`` of a run of layers in its input's frames: output frame ``j`` reads inputs
    ``[j * hop - left, j * hop - left + field)``."""
    hop, field, left = 1, 1, 0
    for spec in specs:
        if spec.strided:
            field += (spec.kernel - 1) * hop
            left += spec.padding * hop
            hop *= spec.stride
    return hop, field, left
