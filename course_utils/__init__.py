"""course_utils: the student library of the representation-learning course kit.

Datasets and loaders, pretrained backbones wrapped for the course, training loops with
progress bars, evaluation, plotting and the *visible* sanity checks. It contains no solution
to anything a student is graded on. Heavy submodules (transformers, timm) load lazily.
"""
from .modes import MODES, describe_mode, get_device, get_mode, set_mode

__version__ = "0.1.0"
__all__ = ["MODES", "get_mode", "set_mode", "describe_mode", "get_device", "__version__"]
