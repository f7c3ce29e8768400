"""Checkpoints and exports: atomic writes (a killed or failed write never replaces a good file, a full disk is
said as such), loading with ``weights_only=True`` only, and the exported encoder (safetensors + config)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vgim.config import Config

if TYPE_CHECKING:
    from vgim.model.stack import Stack

__all__ = [
    "FROZEN_ENCODER",
    "atomic_write",
    "encoder_fingerprint",
    "export_model",
    "load_checkpoint",
    "save_checkpoint",
]


def _disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write looks like a full disk: ENOSPC/EDQUOT, or torch's zip writer failing (it reports
    a short write as a RuntimeError) while less than 16 MiB are left free on ``folder``'s file system."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    try:
        return shutil.disk_usage(folder).free < 16 << 20
    except OSError:
        return False


def _written_with_umask(path: Path) -> None:
    """Give ``path`` the mode a plain ``open()`` would (``0o666`` less the umask), as some writers use 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_write(path: Path, write: Callable[[Path], None], what: str) -> None:
    """``write(tmp)`` then ``os.replace(tmp, path)``; on failure the partial ``tmp`` is removed and a full disk
    is reported as such (an OSError naming the file), so a failed write never replaces a good file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError | RuntimeError) and _disk_full(err, path.parent):
            raise OSError(
                errno.ENOSPC,
                f"no space left on the disk while writing {what} (the partial file was removed; "
                f"{'the previous one is intact' if path.exists() else 'nothing was written'}). Free some disk "
                "space and resume with --resume",
                str(path),
            ) from err
        raise


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a killed or failed write never replaces a good checkpoint, and
    leaves no partial ``.tmp`` behind; a full disk raises OSError(ENOSPC) saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp), f"the checkpoint {path}")


def _torch_load_reason(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to load it unsafely."""
    text = str(err)
    if "Weights only load failed" in text or "weights_only" in text:
        marker = "WeightsUnpickler error:"
        detail = text[text.index(marker) + len(marker) :].strip().splitlines()[0] if marker in text else ""
        return "it holds objects other than tensors, which vgim never unpickles" + (f" ({detail})" if detail else "")
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a vgim checkpoint with ``weights_only=True``; ValueError (naming ``path``) for anything else."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling error means the file is not a checkpoint
        raise ValueError(f"{path}: not a readable vgim checkpoint ({_torch_load_reason(err)})") from err
    if not isinstance(state, dict) or not ({"model", FROZEN_ENCODER} & set(state)) or "config" not in state:
        raise ValueError(f"{path}: not a vgim checkpoint (missing 'model' or 'config')")
    return state


#: The checkpoint key that stands in for ``model`` in a ``train.mode = "frozen"`` run: the SHA-256 of the
#: frozen encoder (:func:`encoder_fingerprint`). The encoder never changes in such a run, and the run it came
#: from holds it, so the checkpoint keeps only what checks that a resume is given the same one.
FROZEN_ENCODER = "encoder_sha256"


def encoder_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: every entry's name, dtype, shape and bytes, in name order (device-independent)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def restore_encoder(stack: Stack, state: dict[str, Any], path: Path, init_given: bool) -> None:
    """Give ``stack`` the encoder of checkpoint ``state`` (read from ``path``): its weights or, for a
    ``train.mode = "frozen"`` run (whose checkpoint keeps only the encoder's SHA-256), check that ``stack``
    already holds that encoder (``init_given``: it came from the caller's ``init_model``)."""
    if "model" in state:  # every mode but frozen (and frozen runs written before FROZEN_ENCODER)
        stack.load_state_dict(state["model"], strict=True)
    elif state[FROZEN_ENCODER] != encoder_fingerprint(stack.state_dict()):
        given = "the given init_model" if init_given else "the seeded fresh encoder (no init_model)"
        raise ValueError(
            f"{path}: this train.mode = 'frozen' run was trained on another encoder than {given} "
            "(the checkpoint keeps the frozen encoder's SHA-256, not its weights). Resume it with the encoder "
            "it started from: for decoders, `vgim decode` on the same, unchanged run"
        )


def export_model(stack: Stack, cfg: Config, out_dir: str | Path) -> Path:
    """Write ``model.safetensors`` (the encoder's weights) and ``config.json`` into ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in stack.state_dict().items()}

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata={"format": "vgim", "name": cfg.name})
        _written_with_umask(tmp)  # safetensors creates the file 0600

    atomic_write(out / "model.safetensors", write, f"the exported model {out / 'model.safetensors'}")
    atomic_write(out / "config.json", lambda tmp: cfg.save(tmp), f"the exported config {out / 'config.json'}")
    return out
