"""Analytic FLOPs of the encoder and the InfoNCE heads (part of :mod:`vgim.bench`)."""

from __future__ import annotations

from vgim.config import Config, ModelConfig
from vgim.model.stack import n_frames

__all__ = ["encoder_macs", "head_macs", "train_step_flops"]


def encoder_macs(cfg: ModelConfig, batch_size: int, samples: int) -> int:
    """Multiply-adds of one forward pass of the encoder's conv layers and GRU (biases, ReLU, pooling and
    the InfoNCE heads are not counted).

    - ``Conv1d``: ``B * T_out * C_out * C_in * kernel``, with ``T_out`` the layer's output length
      (the same arithmetic as :func:`vgim.model.n_frames`).
    - ``GRU`` (PyTorch's, three gates): ``B * T * 3 * H * (C_in + H)`` for the input and hidden
      projections, ``T`` the frame count it runs over.
    """
    length = samples
    channels = cfg.in_channels
    macs = 0
    for spec in cfg.layers:
        if spec.filters:  # a gabor bank is 2 x channels real filters on one input channel
            length = max(0, (length + 2 * spec.padding - spec.kernel) // spec.stride + 1)
            factor = 2 if spec.kind == "gabor" else 1
            macs += batch_size * length * factor * spec.channels * channels * spec.kernel
            channels = spec.channels
        elif spec.kind == "maxpool":
            length = max(0, (length + 2 * spec.padding - spec.kernel) // spec.stride + 1)
        else:
            macs += batch_size * length * 3 * spec.channels * (channels + spec.channels)
            channels = spec.channels
    assert length == n_frames(cfg, samples)[-1]
    return macs


def train_step_flops(cfg: ModelConfig, batch_size: int, samples: int) -> int:
    """FLOPs of one training step's encoder: ``3 * 2 * encoder_macs`` (a multiply-add is 2 FLOPs; the
    backward pass costs about twice the forward: gradients with respect to inputs and to weights)."""
    return 3 * 2 * encoder_macs(cfg, batch_size, samples)


def head_macs(cfg: Config, batch_size: int, samples: int, modules: list[int] | None = None) -> int:
    """Forward multiply-adds of the InfoNCE heads of ``modules`` (default: all): per head
    ``B * P * K * C_z * (C_c + 1 + N)`` for ``W_k c_t`` and the positive and ``N`` negative scores, with
    ``P = min(max_positions, T - K)`` scored positions. For information; not part of :func:`encoder_macs`."""
    stack_cfg = cfg.model
    frames = n_frames(stack_cfg, samples)
    o = cfg.objective
    out = 0
    in_channels = stack_cfg.in_channels
    i = 0
    for m, n_layers in enumerate(stack_cfg.modules):
        specs = stack_cfg.layers[i : i + n_layers]
        i += n_layers
        z_channels = in_channels
        for spec in specs:
            if spec.filters:
                z_channels = spec.channels
        c_channels = specs[-1].channels if specs[-1].kind == "gru" else z_channels
        if modules is None or m in modules:
            valid = frames[m] - o.n_predictions
            positions = min(o.max_positions, valid) if o.max_positions > 0 else valid
            out += batch_size * max(0, positions) * o.n_predictions * z_channels * (c_channels + 1 + o.n_negatives)
        in_channels = c_channels
    return out
