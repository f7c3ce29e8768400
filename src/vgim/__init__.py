"""vgim: Contrastive Predictive Coding, Greedy InfoMax and Variational Greedy InfoMax for speech.

>>> import vgim
>>> model = vgim.load("runs/demo/vgim-small")          # a run directory, an export folder or a .pt file
>>> features = model.extract_features(wave, 16000)      # one [time, channels] tensor per module
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vgim.config import Config, available_presets, config_from_dict, load_config
from vgim.model.stack import Stack

__version__ = "0.1.0"
__all__ = ["Config", "Stack", "__version__", "available_presets", "load", "load_config"]


def load(path: str | Path, device: str | torch.device = "cpu") -> Stack:
    """Load a trained encoder, in eval mode, on ``device``.

    ``path`` may be a run directory (its ``export/`` if the run finished, else its last checkpoint), an
    export folder (``model.safetensors`` + ``config.json``), or a checkpoint ``.pt`` file. The config saved
    with the weights rebuilds the model; weights load with ``strict=True``.
    """
    from vgim.train.loop import CHECKPOINT, load_checkpoint, resolve_device

    p = Path(path)
    dev = resolve_device(str(device))
    if p.is_dir() and (p / "export" / "model.safetensors").exists():
        p = p / "export"
    elif p.is_dir() and (p / CHECKPOINT).exists():
        p = p / CHECKPOINT
    if p.is_dir() and (p / "model.safetensors").exists():
        from safetensors.torch import load_file

        cfg = config_from_dict(json.loads((p / "config.json").read_text()))
        weights = load_file(str(p / "model.safetensors"), device="cpu")
    elif p.is_file():
        state = load_checkpoint(p)
        cfg = config_from_dict(state["config"])
        weights = state["model"]
    else:
        raise FileNotFoundError(
            f"{path}: not a vgim run directory, export folder or checkpoint "
            "(expected export/model.safetensors, checkpoints/last.pt, or a .pt file)"
        )
    model = Stack(cfg.model)
    model.load_state_dict(weights, strict=True)
    model.config = cfg
    return model.to(dev).eval()
