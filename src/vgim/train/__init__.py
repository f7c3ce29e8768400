"""Training: the loop (three modes), checkpoints, metrics and export."""

from vgim.train.loop import (
    TrainResult,
    batches_from_corpus,
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
    "batches_from_corpus",
    "build_batches",
    "forward_losses",
    "export_model",
    "get_lr",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
]
