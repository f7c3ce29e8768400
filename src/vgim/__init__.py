"""vgim: Contrastive Predictive Coding, Greedy InfoMax and Variational Greedy InfoMax for speech.

>>> import vgim
>>> model = vgim.load("runs/demo/vgim-demo")           # a run directory, an export folder or a .pt file
>>> model = vgim.load("pretrained:NAME")               # an encoder shipped with vgim (see vgim.pretrained_names())
>>> features = model.extract_features(wave, sample_rate)  # resampled to 16 kHz; one [time, channels] tensor per module
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vgim.config import Config, available_presets, config_from_dict, load_config
from vgim.model.stack import Stack
from vgim.packaged import PREFIX as _PRETRAINED
from vgim.packaged import pretrained_names, pretrained_path

__version__ = "0.1.0"
__all__ = ["Config", "Stack", "__version__", "available_presets", "load", "load_config", "pretrained_names"]

log = logging.getLogger("vgim")


def _load_export(folder: Path) -> tuple[Config, dict[str, torch.Tensor]]:
    """The config and weights of an export folder; ValueError naming the file that is unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{config_path}: missing (an export folder holds model.safetensors and config.json)") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_path}: not a readable vgim config (corrupted JSON: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{config_path}: not a vgim config (expected a JSON object)")
    try:
        cfg = config_from_dict(data)
    except ValueError as err:
        raise ValueError(f"{config_path}: not a valid vgim config ({err})") from err
    try:
        weights = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{weights_path}: not a readable safetensors file ({err})") from err
    return cfg, weights


def load(path: str | Path, device: str | torch.device = "cpu") -> Stack:
    """Load a trained encoder, in eval mode, on ``device``.

    ``path`` may be a run directory (its ``export/`` if the run finished, else its last checkpoint), an
    export folder (``model.safetensors`` + ``config.json``), a checkpoint ``.pt`` file, or
    ``"pretrained:NAME"``, an encoder shipped as package data (:func:`pretrained_names` lists them; a
    ValueError lists them for an unknown name; :mod:`vgim.packaged`). The config saved
    with the weights rebuilds the model; weights load with ``strict=True``. When a run directory's export is
    unreadable (a corrupted ``model.safetensors`` or ``config.json``) its last checkpoint is loaded instead,
    with a warning naming the broken file; without a checkpoint a ValueError names it.
    """
    from vgim.train.loop import CHECKPOINT, load_checkpoint, resolve_device

    p = pretrained_path(path) if isinstance(path, str) and path.startswith(_PRETRAINED) else Path(path)
    dev = resolve_device(str(device))
    if p.is_dir() and (p / "export" / "model.safetensors").exists():
        try:
            return _build(*_load_export(p / "export"), p / "export", dev)
        except ValueError as err:
            if not (p / CHECKPOINT).is_file():
                raise
            log.warning("%s; loading the run's last checkpoint %s instead", err, p / CHECKPOINT)
            p = p / CHECKPOINT
    elif p.is_dir() and (p / CHECKPOINT).exists():
        p = p / CHECKPOINT
    if p.is_dir() and (p / "model.safetensors").exists():
        return _build(*_load_export(p), p, dev)
    if p.is_file():
        state = load_checkpoint(p)
        if "model" not in state:
            raise ValueError(
                f"{p}: a train.mode = 'frozen' checkpoint (decoders) keeps only its heads, not the encoder it was "
                "trained on; load that run instead"
            )
        return _build(config_from_dict(state["config"]), state["model"], p, dev)
    raise FileNotFoundError(
        f"{path}: not a vgim run directory, export folder or checkpoint "
        "(expected export/model.safetensors, checkpoints/last.pt, or a .pt file)"
    )


def _build(cfg: Config, weights: dict[str, torch.Tensor], source: Path, device: torch.device) -> Stack:
    """The encoder of ``cfg`` with ``weights`` (strict), in eval mode on ``device``."""
    model = Stack(cfg.model)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{source}: the weights do not match the saved config's model ({first})") from err
    model.config = cfg
    return model.to(device).eval()
