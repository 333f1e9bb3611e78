"""The chain engine: from raw frames and target tags to products (DESIGN.md 3.6).

:class:`Chain` plans jobs from the recipes' declarations (nothing here knows a recipe by
name), associates calibrations, and runs the jobs on a ``serial``, ``processes`` or ``dask``
executor with a manifest that makes reruns free and killed runs resumable.
"""

from .engine import Chain, RunSummary
from .plan import Calibration, Job, Plan

__all__ = ["Calibration", "Chain", "Job", "Plan", "RunSummary"]
