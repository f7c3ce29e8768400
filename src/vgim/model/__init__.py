"""Encoder layers, gradient-isolated modules and the stack (no losses, no data)."""

from vgim.model.stack import FrameInfo, GIMModule, ModuleOutput, Stack, frame_infos, n_frames

__all__ = ["FrameInfo", "GIMModule", "ModuleOutput", "Stack", "frame_infos", "n_frames"]
