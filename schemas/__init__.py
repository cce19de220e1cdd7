"""The crlgen spec language (``crlgen.schemas``): pure data, validated with Pydantic.

A leaf package: it imports nothing from ``crlgen.scenes`` or ``crlgen.pipeline``, runs no
engine and does no I/O beyond reading and writing spec files. Public names are
re-exported here; the modules behind them are free to change. To load catalogue
scenes by name (``static/spring``) use :func:`crlgen.pipeline.load_spec`, which passes
the catalogue in.
"""

from .counterfactuals import Counterfactuals
from .dataset import DatasetSpec, OutputSettings
from .domains import Domain
from .errors import SpecError
from .expression import Expression, ExpressionError, parse_expression
from .graph import CausalGraph, Node
from .interventions import Do, Explicit, Observational, Scale, Sets, Shift, SingleNode, Soft
from .loading import load_spec
from .noise import Bernoulli, Beta, Categorical, Exponential, Laplace, LogNormal, Mixture, Normal, Uniform
from .render import Camera, FixedCamera, MountedCamera, OrbitCamera, RenderSettings, TopDownCamera, VideoSettings
from .splits import Splits, TestRange
from .temporal import TemporalEdit
from .variables import Boolean, Continuous, Integer
from .variables import Categorical as CategoricalVariable

#: The name spec authors use in Python.
Dataset = DatasetSpec

__all__ = [
    "Bernoulli", "Beta", "Boolean", "Camera", "Categorical", "CategoricalVariable", "CausalGraph", "Continuous",
    "Counterfactuals", "Dataset", "DatasetSpec", "Do", "Domain", "Explicit", "Exponential", "Expression",
    "ExpressionError", "FixedCamera", "Integer", "Laplace", "LogNormal", "Mixture", "MountedCamera", "Node", "Normal", "Observational", "OrbitCamera",
    "OutputSettings", "RenderSettings", "Scale", "Sets", "Shift", "SingleNode", "Soft", "SpecError", "Splits", "TestRange",
    "TemporalEdit", "TopDownCamera", "Uniform", "VideoSettings", "load_spec", "parse_expression",
]
