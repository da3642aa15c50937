"""Look inside: the views that make the RNN, LSTM and attention chapters visible, computed here and
drawn by the app (or printed by ``lmcore inspect``): the units of a recurrent model over a text,
a transformer's attention, gradients flowing back through time, and Zipf's law of a corpus. (The
surprisal of a text is ``lmcore.score_text`` with ``top``.)"""
from .attention import AttentionView, attention_view
from .gradients import GradientFlow, gradient_flow, gradient_flows
from .neurons import NeuronTrace, find_units, text_properties, trace_text
from .zipf import ZipfStats, zipf_stats

__all__ = ["AttentionView", "GradientFlow", "NeuronTrace", "ZipfStats", "attention_view", "find_units",
           "gradient_flow", "gradient_flows", "text_properties", "trace_text", "zipf_stats"]
