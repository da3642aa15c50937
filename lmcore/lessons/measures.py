"""What a lesson measures besides its models' own summaries, by kind: each kind declares the arguments it
takes, the fields its placeholders may name, and how it computes them (after the lesson's models trained).
A lesson file names a kind (``[[measures]] kind = "corpus"``); the numbers come from lmcore's own views
(Zipf's law, gradients through time, ...), never from the lesson text."""
from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Callable

from ..errors import Cancelled, LessonError


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


# ------------------------------------------------------------------------------------------ helpers
def _loaded(ctx: Context, key: str):
    """The lesson's model ``key`` loaded (model, vocab, tokenizer) and as the views take it (a namespace
    with model, vocab, tokenizer and device: models that cannot generate are shown too)."""
    from types import SimpleNamespace

    from ..generation.generator import load_model

    if key not in ctx.names:
        raise LessonError(f"a measure names model '{key}', which the lesson does not train")
    model, vocab, tokenizer = load_model(ctx.store, ctx.names[key])
    weight = next(iter(model.parameters()), None)
    device = weight.device if weight is not None else "cpu"
    return SimpleNamespace(model=model, vocab=vocab, tokenizer=tokenizer, device=device)


def _text(ctx: Context, key: str, chars: int) -> str:
    """About ``chars`` characters (20 to 50,000; fewer in a tiny run) of the model's validation text."""
    from ..generation.scoring import validation_text

    chars = max(20, min(chars, 1500 if ctx.tiny else 50_000))
    found = validation_text(ctx.store, ctx.names[key], chars)
    if not found.strip():
        raise LessonError(f"model {key}'s validation text is empty: there is nothing to look at")
    return found


# ------------------------------------------------------------------------------------------ units
UNIT_PROPS = {"quote": "inside quotes", "bracket": "inside brackets", "line": "position in line",
              "word": "inside a word", "newline": "after a line break"}


def units_measure(args: dict, ctx: Context) -> dict:
    """The units of a trained recurrent model over its validation text that track simple properties of it
    (Karpathy et al.'s quote unit) and its most saturated gate (lmcore.inspect find_units)."""
    from ..inspect.neurons import find_units, text_properties, trace_text

    a = Measure.arguments(MEASURES["units"], args)
    gen = _loaded(ctx, a["model"])
    trace = trace_text(gen, _text(ctx, a["model"], a["chars"]), stop_event=ctx.stop)
    ctx.check_stop()
    ranked = find_units(trace, top=3, stop_event=ctx.stop)
    props = text_properties(trace.tokens)
    out = {"tokens": len(trace.tokens), "quote_share": float(props["inside quotes"].mean()),
           "bracket_share": float(props["inside brackets"].mean())}
    for short, name in UNIT_PROPS.items():
        best = (ranked.get(name) or [None])[0]
        out[f"{short}_r"] = best["r"] if best else 0.0
        out[f"{short}_unit"] = _unit_name(trace, best) if best else "none (the text never changes it)"
    sat = (ranked.get("saturated gates") or [None])[0]
    out["saturated"] = sat["score"] if sat else 0.0
    out["saturated_unit"] = _unit_name(trace, sat) if sat else "none (this cell has no gates)"
    return out


def _unit_name(trace, entry: dict) -> str:
    return f"layer {trace.layer_name(entry['layer'])}, {entry['value']} unit {entry['unit']}"


# ------------------------------------------------------------------------------------------ trained gradients
def gradient_flow_measure(args: dict, ctx: Context) -> dict:
    """How many times smaller the gradient is ``back`` steps back than at the last step, in a trained model
    reading its own validation text (the ``gradients`` measure looks at fresh models)."""
    import torch

    from ..inspect.gradients import gradient_flow

    a = Measure.arguments(MEASURES["gradient_flow"], args)
    back = max(1, min(a["back"], 200))
    gen = _loaded(ctx, a["model"])
    tokens = gen.tokenizer.tokenize(_text(ctx, a["model"], 4 * back + 400))[:back + 2]
    if len(tokens) < 3:
        raise LessonError(f"model {a['model']}'s validation text is too short to follow gradients back")
    ids = torch.tensor([gen.vocab.token_to_idx.get(t, 0) for t in tokens], device=gen.device)
    norms = gradient_flow(gen.model, ids).norms
    return {"shrink": float(norms[-1] / norms[0]) if norms[0] > 0 else float("inf"), "steps": len(norms) - 1,
            "last_norm": float(norms[-1]), "first_norm": float(norms[0])}


# ------------------------------------------------------------------------------------------ attention
PATTERN_FIELDS = {"itself": "the token itself", "previous": "the previous token", "first": "the first token",
                  "line_start": "the start of the line", "same": "the same token earlier",
                  "induction": "the token after the same one earlier"}


def attention_measure(args: dict, ctx: Context) -> dict:
    """What each head of a transformer (or BERT) looks at over the model's validation text: for each
    pattern, the head that gives it the most attention and how much (lmcore.inspect attention_view)."""
    import numpy as np

    from ..inspect.attention import attention_view

    a = Measure.arguments(MEASURES["attention"], args)
    gen = _loaded(ctx, a["model"])
    view = attention_view(gen, _text(ctx, a["model"], a["chars"]))
    ctx.check_stop()
    patterns = view.head_patterns()
    first = view.matrix(0, 0)[1:] if view.layers and len(view.tokens) > 1 else None  # what each row may see
    uniform = float((1.0 / np.maximum(1, (first > 0).sum(1))).mean()) if first is not None else 1.0
    out = {"layers": view.layers, "heads": view.heads, "tokens": len(view.tokens), "uniform": uniform}
    for short, name in PATTERN_FIELDS.items():
        mass, where = max(((p["mass"], (li, hi)) for li, layer in enumerate(patterns) for hi, head in enumerate(layer)
                           for p in head if p["pattern"] == name), default=(None, None))
        out[f"{short}_mass"] = mass
        out[f"{short}_head"] = f"layer {where[0]} head {where[1]}" if where else "none"
    return out


# ------------------------------------------------------------------------------------------ alignment
def alignment_measure(args: dict, ctx: Context) -> dict:
    """An encoder-decoder's greedy reply to ``source`` and, where it has attention, how its alignment
    looks: how sharp (the mean of each row's largest weight) and how much of it lies on the diagonal or
    on the mirrored diagonal (a reversal's)."""
    from ..generation.seq2seq_decode import reply
    from ..inspect.alignment import alignment_view

    a = Measure.arguments(MEASURES["alignment"], args)
    gen = _loaded(ctx, a["model"])
    if not gen.model.family.reads_pairs:
        raise LessonError(f"an alignment measure needs an encoder-decoder; model {a['model']} is a "
                          f"{gen.model.config.arch} model")
    answer = reply(gen.model, gen.vocab, gen.tokenizer, a["source"])
    shown = " ".join(answer.text.split())
    out = {"source": a["source"], "expected": a["expected"] or "(not given)",
           "reply": shown if len(shown) <= 80 else shown[:77] + "...",
           "correct": "yes" if answer.text == a["expected"] else "no",
           "sharpness": None, "diagonal_share": None, "mirror_share": None, "looks": None}
    if not gen.model.shows_attention:
        return out
    view = alignment_view(gen, a["source"], a["expected"] or None)
    m = view.matrix("cross")
    rows, cols = m.shape
    best = m.argmax(1)
    out["sharpness"] = float(m.max(1).mean())
    out["diagonal_share"] = float(sum(best[i] == i for i in range(rows)) / max(1, rows))
    out["mirror_share"] = float(sum(best[i] == cols - 1 - i for i in range(rows)) / max(1, rows))
    target, source = view.labels("cross")
    out["looks"] = ", ".join(f"{_piece(target[i])} ← {_piece(source[best[i]])} ({best[i] + 1} of {cols})"
                             for i in range(min(rows, 4)))
    return out


def _piece(text: str) -> str:
    return "'" + text.replace("\n", "⏎") + "'"


# ------------------------------------------------------------------------------------------ samples
SAMPLERS = {  # field prefix: what a stream of the model runs with
    "greedy": {"temperature": 0.0}, "cold": {"temperature": 0.5}, "warm": {"temperature": 1.0},
    "hot": {"temperature": 1.6}, "topk": {"temperature": 1.0, "top_k": 5},
    "topp": {"temperature": 1.0, "top_p": 0.9}, "beam": {"beam": 5},
}


def samples_measure(args: dict, ctx: Context) -> dict:
    """The model's continuation of ``prompt`` with each way of choosing tokens (greedy, temperatures,
    top-k, top-p, beam search), each with the model's own perplexity of what it wrote and its share of
    distinct words (how much it repeats itself)."""
    from ..generation.generator import Generator
    from ..generation.sampling_settings import SamplingSettings

    a = Measure.arguments(MEASURES["samples"], args)
    if a["model"] not in ctx.names:
        raise LessonError(f"a measure names model '{a['model']}', which the lesson does not train")
    gen = Generator.from_store(ctx.store, ctx.names[a["model"]])
    tokens = max(1, min(a["tokens"], 40 if ctx.tiny else 400))
    out = {"prompt": a["prompt"]}
    for name, how in SAMPLERS.items():
        ctx.check_stop()
        settings = SamplingSettings(max_tokens=tokens, seed=a["seed"], **how)
        outs = list(gen.stream(a["prompt"], settings, stop_event=ctx.stop))
        text = "".join(t.text for t in outs)
        logp = [math.log(max(t.prob, 1e-300)) for t in outs]
        words = text.split()
        out[name] = " ".join(text.split())[:400]
        out[f"{name}_ppl"] = math.exp(-sum(logp) / len(logp)) if logp else None
        out[f"{name}_distinct"] = len(set(words)) / len(words) if words else None
    return out


# ------------------------------------------------------------------------------------------ fill
def fill_measure(args: dict, ctx: Context) -> dict:
    """The model's filling of ``text``'s blanks (_): the filled text, its first blank's top guesses."""
    from ..generation.fill import fill

    a = Measure.arguments(MEASURES["fill"], args)
    if a["model"] not in ctx.names:
        raise LessonError(f"a measure names model '{a['model']}', which the lesson does not train")
    result = fill(ctx.store, ctx.names[a["model"]], a["text"])
    first = result.blanks[0].candidates if result.blanks else []
    return {"text": a["text"], "filled": " ".join(result.text.split()), "blanks": len(result.blanks),
            "first": first[0][0] if first else "", "first_prob": first[0][1] if first else None,
            "second": first[1][0] if len(first) > 1 else "", "method": result.method}


def _prefixed(prefixes, suffixes) -> tuple[str, ...]:
    return tuple(f"{p}{s}" for p in prefixes for s in suffixes)


MEASURES.update({
    "units": Measure(("tokens", "quote_share", "bracket_share", *_prefixed(UNIT_PROPS, ("_r", "_unit")),
                      "saturated", "saturated_unit"),
                     {"model": (str, ""), "chars": (int, 6000)}, units_measure,
                     "the units of a trained recurrent model that track quotes, brackets, lines; its most "
                     "saturated gate"),
    "gradient_flow": Measure(("shrink", "steps", "last_norm", "first_norm"),
                             {"model": (str, ""), "back": (int, 50)}, gradient_flow_measure,
                             "gradients through time in a trained model, over its validation text"),
    "attention": Measure(("layers", "heads", "tokens", "uniform", *_prefixed(PATTERN_FIELDS, ("_mass", "_head"))),
                         {"model": (str, ""), "chars": (int, 300)}, attention_measure,
                         "what a transformer's heads look at: the head of each pattern, and its attention"),
    "alignment": Measure(("source", "expected", "reply", "correct", "sharpness", "diagonal_share", "mirror_share",
                          "looks"),
                         {"model": (str, ""), "source": (str, ""), "expected": (str, "")}, alignment_measure,
                         "an encoder-decoder's reply to a source and how sharp and diagonal its alignment is"),
    "samples": Measure(("prompt", *_prefixed(SAMPLERS, ("", "_ppl", "_distinct"))),
                       {"model": (str, ""), "prompt": (str, ""), "tokens": (int, 200), "seed": (int, 0)},
                       samples_measure, "continuations greedy, at temperatures, top-k, top-p and by beam search"),
    "fill": Measure(("text", "filled", "blanks", "first", "first_prob", "second", "method"),
                    {"model": (str, ""), "text": (str, "")}, fill_measure,
                    "the model's filling of a text's blanks"),
})
