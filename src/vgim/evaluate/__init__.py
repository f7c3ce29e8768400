"""Feature extraction, pooling, linear probes and baselines (MFCC, random init)."""

from vgim.evaluate.baselines import mfcc_features, mfcc_frames
from vgim.evaluate.evaluation import (
    EvaluationSplit,
    corpus_features,
    evaluate_models,
    mfcc_feature_set,
    model_feature_sets,
)
from vgim.evaluate.pooling import pool_segments, pool_utterance
from vgim.evaluate.probes import (
    DEFAULT_TASKS,
    ProbeResult,
    ProbeTask,
    linear_probe,
    run_probes,
)
from vgim.evaluate.tables import results_table, results_to_json

__all__ = [
    "DEFAULT_TASKS",
    "EvaluationSplit",
    "ProbeResult",
    "ProbeTask",
    "corpus_features",
    "evaluate_models",
    "linear_probe",
    "mfcc_feature_set",
    "mfcc_features",
    "mfcc_frames",
    "model_feature_sets",
    "pool_segments",
    "pool_utterance",
    "results_table",
    "results_to_json",
    "run_probes",
]
