"""Training: the loop (three modes), checkpoints, metrics and export."""

from vgim.train.loop import (
    TrainResult,
    build_batches,
    export_model,
    forward_losses,
    get_lr,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    train,
)

__all__ = [
    "TrainResult",
    "build_batches",
    "forward_losses",
    "export_model",
    "get_lr",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
]
