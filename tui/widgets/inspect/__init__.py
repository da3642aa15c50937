"""Widgets of the Inspect tab: surprisal, neurons, attention, gradients through time, the corpus."""
from .chart_views import CorpusView, GradientView
from .pane import InspectPane, ViewComputed
from .text_views import AttentionView, NeuronView, SurprisalView

__all__ = ["AttentionView", "CorpusView", "GradientView", "InspectPane", "NeuronView", "SurprisalView",
           "ViewComputed"]
