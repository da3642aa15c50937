"""What a lesson measures besides its models' own summaries, by kind: each kind declares the arguments it
takes, the fields its placeholders may name, and how it computes them (after the lesson's models trained).
A lesson file names a kind (``[[measures]] kind = "corpus"``); the numbers come from lmcore's own views
(Zipf's law, gradients through time, ...), never from the lesson text."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable

from ..errors import Cancelled
from .lesson_file import LessonError


@dataclass
class Context:
    """What a measure may use: the store, the lesson's model names by key, whether the run is a tiny
    one (tests: fewer tokens, shorter texts) and the stop event."""
    store: object
    names: dict
    tiny: bool = False
    stop: threading.Event = field(default_factory=threading.Event)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Cancelled("the lesson was stopped")


@dataclass(frozen=True)
class Measure:
    fields: Callable[[], tuple[str, ...]] | tuple[str, ...]
    args: dict                                  # argument: (type, default)
    run: Callable[[dict, Context], dict]
    about: str = ""

    def field_names(self) -> tuple[str, ...]:
        return self.fields() if callable(self.fields) else self.fields

    def check(self, args: dict, key: str) -> None:
        for name, value in args.items():
            if name not in self.args:
                raise LessonError(f"measure {key}: unknown argument '{name}' (it takes {', '.join(self.args) or 'none'})")
            kind = self.args[name][0]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                if not (isinstance(value, str) and value.startswith("$")):  # a setting: checked when resolved
                    raise LessonError(f"measure {key}: {name} must be {kind.__name__}")

    def arguments(self, args: dict) -> dict:
        return {name: args.get(name, default) for name, (_, default) in self.args.items()}


# ------------------------------------------------------------------------------------------ corpus
def corpus_measure(args: dict, ctx: Context) -> dict:
    """The corpus as tokens: characters, words, vocabulary sizes, Zipf's slopes and coverage."""
    from ..data.corpus import load
    from ..inspect.zipf import zipf_stats

    a = Measure.arguments(MEASURES["corpus"], args)
    text = load(a["corpus"], ctx.store.home).text
    if ctx.tiny:
        text = text[:20_000]
    ctx.check_stop()
    words = zipf_stats(text, "word", "d2l", 3, top=5)
    chars = zipf_stats(text, "char", "d2l", 1, top=5)
    uni, bi, tri = words.ngrams
    return {"chars": len(text), "words": words.tokens, "word_vocab": uni.distinct, "char_vocab": chars.ngrams[0].distinct,
            "slope_1": uni.slope, "slope_2": bi.slope, "slope_3": tri.slope, "hapax": uni.hapax,
            "hapax_share": uni.hapax / max(1, uni.distinct), "top10_share": uni.coverage[10],
            "top100_share": uni.coverage[100], "top_word": uni.top[0][0] if uni.top else "",
            "top_word_count": uni.top[0][1] if uni.top else 0, "bigrams": bi.distinct, "trigrams": tri.distinct}


# ------------------------------------------------------------------------------------------ gradients
def _gradient_labels() -> dict[str, str]:
    """Field name of each fresh model the families compare in the gradient view (rnn, gru, lstm_forget_bias_1...)."""
    from ..models import families

    return {re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_"): label
            for fam in families() for label, _, _ in fam.lessons.get("gradients", ())}


def gradients_measure(args: dict, ctx: Context) -> dict:
    """How many times smaller the gradient is ``back`` steps back than at the last step, for each fresh
    model the gradient view compares (the chapter's vanishing gradients)."""
    from ..inspect.gradients import gradient_flows

    a = Measure.arguments(MEASURES["gradients"], args)
    back = max(1, min(a["back"], 99))
    flows = {f.label: f for f in gradient_flows(length=back + 1, seed=a["seed"])}
    out = {}
    for name, label in _gradient_labels().items():
        ctx.check_stop()
        norms = flows[label].norms
        out[name] = float(norms[-1] / norms[0]) if norms[0] > 0 else float("inf")
    return out


MEASURES: dict[str, Measure] = {
    "corpus": Measure(("chars", "words", "word_vocab", "char_vocab", "slope_1", "slope_2", "slope_3", "hapax",
                       "hapax_share", "top10_share", "top100_share", "top_word", "top_word_count", "bigrams",
                       "trigrams"),
                      {"corpus": (str, "timemachine")}, corpus_measure,
                      "the corpus as characters and words: vocabulary, Zipf's law"),
    "gradients": Measure(lambda: tuple(_gradient_labels()), {"back": (int, 50), "seed": (int, 0)},
                         gradients_measure, "gradients through time on fresh models: how much smaller 'back' steps back"),
}
