"""The typed sub-APIs a Client carries: client.artifacts, .activations, .stitch, .sae, .eval, .experiments."""
from .activations import ActivationsApi, ForwardResult, Generation, Tokens, corpus_spec
from .artifacts import ArtifactsApi
from .evaluation import EvalApi, probe_dataset
from .experiments import ExperimentRun, ExperimentsApi, experiment_spec
from .sae import SaeApi
from .stitch import LayerMatch, StitchApi

__all__ = ["ActivationsApi", "ArtifactsApi", "EvalApi", "ExperimentRun", "ExperimentsApi", "ForwardResult", "Generation",
           "LayerMatch", "SaeApi", "StitchApi", "Tokens", "corpus_spec", "experiment_spec", "probe_dataset"]
