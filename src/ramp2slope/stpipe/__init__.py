"""Step and Pipeline base classes with the official (stpipe) behaviour."""
from .naming import make_output_path, split_root
from .pipeline import Pipeline
from .spec import Parameter, parse_spec
from .step import ReferenceCache, Step

__all__ = ["Step", "Pipeline", "ReferenceCache", "Parameter", "parse_spec", "make_output_path", "split_root"]
