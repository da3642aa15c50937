"""Widgets of the training panel."""
from .chart import PerplexityChart
from .metrics import MetricsView, SampleView
from .panel import TrainingPanel

__all__ = ["MetricsView", "PerplexityChart", "SampleView", "TrainingPanel"]
