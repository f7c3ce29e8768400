"""Interpretation: decode each module back to audio and walk its latent space (V-GIM thesis 4.2-4.8)."""

from vgim.interpret.decoders import (
    Decoder,
    DecodeResult,
    ReconstructionLoss,
    evaluate_decoders,
    load_decoders,
    log_spectral_distance,
    log_spectrogram,
    plot_reconstruction,
    reconstruct,
    train_decoders,
)
from vgim.interpret.traversal import (
    SPAN_99,
    Latent,
    Traversal,
    encode_latent,
    interpolate,
    plot_interpolation,
    plot_traversal,
    traverse,
    write_traversal_audio,
)

__all__ = [
    "SPAN_99",
    "DecodeResult",
    "Decoder",
    "Latent",
    "ReconstructionLoss",
    "Traversal",
    "encode_latent",
    "evaluate_decoders",
    "interpolate",
    "load_decoders",
    "log_spectral_distance",
    "log_spectrogram",
    "plot_interpolation",
    "plot_reconstruction",
    "plot_traversal",
    "reconstruct",
    "train_decoders",
    "traverse",
    "write_traversal_audio",
]

# Maps, activations and diagnostics (t-SNE, activations over time, kernel responses, KL, accuracy per k, MIG).
from vgim.interpret.activations import (  # noqa: E402
    kernel_frequencies,
    kernel_responses,
    module_outputs,
    plot_activations,
    plot_kernel_responses,
    top_std_channels,
)
from vgim.interpret.diagnostics import (  # noqa: E402
    MIGResult,
    accuracy_per_k,
    active_dimensions,
    disentanglement,
    latent_kl,
    mig,
    plot_accuracy_per_k,
    plot_latent_kl,
    plot_mi_matrix,
    plot_training_curves,
    read_metrics,
    syllable_factors,
    syllable_latents,
)
from vgim.interpret.maps import draw_maps, plot_tsne, pooled_examples, tsne_map  # noqa: E402

__all__ += [
    "MIGResult",
    "accuracy_per_k",
    "active_dimensions",
    "disentanglement",
    "draw_maps",
    "kernel_frequencies",
    "kernel_responses",
    "latent_kl",
    "mig",
    "module_outputs",
    "plot_accuracy_per_k",
    "plot_activations",
    "plot_kernel_responses",
    "plot_latent_kl",
    "plot_mi_matrix",
    "plot_training_curves",
    "plot_tsne",
    "pooled_examples",
    "read_metrics",
    "syllable_factors",
    "syllable_latents",
    "top_std_channels",
    "tsne_map",
]
