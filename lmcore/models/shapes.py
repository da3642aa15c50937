"""The name and shape of every tensor a model saves, from its config alone and without torch: the store
lists models and checks their weights files against their configs without loading it.

Each model class builds exactly these tensors (tests/test_cli_startup.py builds every architecture on the
meta device, in many configurations, and compares); for an architecture not described here
``models.expected_shapes`` builds the model on the meta device instead."""
from __future__ import annotations

from .config import MIN_RNNS, RECURRENT, ModelConfig

Shapes = dict[str, tuple[int, ...]]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gates of a recurrent cell (rows of its weights, in hidden sizes)


def _linear(name: str, n_in: int, n_out: int, bias: bool = True) -> Shapes:
    return {f"{name}.weight": (n_out, n_in), **({f"{name}.bias": (n_out,)} if bias else {})}


def _norm(name: str, width: int) -> Shapes:
    return {f"{name}.weight": (width,), f"{name}.bias": (width,)}


def _recurrent(c: ModelConfig) -> Shapes:
    v, h, dirs = c.vocab_size, c.hidden, 2 if c.bidirectional else 1
    out: Shapes = {}
    if c.input == "onehot":
        n_in = v
    else:
        n_in = c.embed or h
        out["embedding.weight"] = (v, n_in)
    g = GATES[c.arch] * h
    for layer in range(c.num_layers):
        for sfx in ("", "_reverse")[:dirs]:
            out[f"rnn.weight_ih_l{layer}{sfx}"] = (g, n_in if layer == 0 else h * dirs)
            out[f"rnn.weight_hh_l{layer}{sfx}"] = (g, h)
            out[f"rnn.bias_ih_l{layer}{sfx}"] = (g,)
            out[f"rnn.bias_hh_l{layer}{sfx}"] = (g,)
    return {**out, **_linear("head", h * dirs, v)}


def _min_rnn(c: ModelConfig) -> Shapes:
    v, h = c.vocab_size, c.hidden
    out: Shapes = {"embedding.weight": (v, h)}
    for i in range(c.num_layers):
        b = f"blocks.{i}"
        for part in (_norm(f"{b}.ln_1", h), _linear(f"{b}.rnn.proj", h, (2 if c.arch == "mingru" else 3) * h),
                     _linear(f"{b}.rnn.out", h, h), _norm(f"{b}.ln_2", h), _linear(f"{b}.mlp.0", h, 2 * h),
                     _linear(f"{b}.mlp.2", 2 * h, h)):
            out.update(part)
    return {**out, **_norm("ln_f", h), **_linear("head", h, v)}


def _transformer(c: ModelConfig) -> Shapes:
    v, h = c.vocab_size, c.hidden
    out: Shapes = {"wte.weight": (v, h), **({"wpe.weight": (c.context, h)} if c.pos == "learned" else {})}
    for i in range(c.num_layers):
        b = f"blocks.{i}"
        for part in (_norm(f"{b}.ln_1", h), _linear(f"{b}.attn.c_attn", h, 3 * h), _linear(f"{b}.attn.c_proj", h, h),
                     _norm(f"{b}.ln_2", h), _linear(f"{b}.mlp.c_fc", h, 4 * h), _linear(f"{b}.mlp.c_proj", 4 * h, h)):
            out.update(part)
    return {**out, **_norm("ln_f", h), **_linear("lm_head", h, v, bias=False)}  # tied: the same as wte


def _ngram(c: ModelConfig) -> Shapes:
    """Before counting: the counts' sizes (and so their saved shapes) depend on the data."""
    out: Shapes = {"_dummy": (0,), "unigram": (c.vocab_size,)}
    for k in range(2, c.order + 1):
        out.update({f"ctx_codes_{k}": (0,), f"ctx_counts_{k}": (0,), f"row_ptr_{k}": (1,), f"cols_{k}": (0,),
                    f"vals_{k}": (0,)})
    return out


FAMILIES = {"ngram": _ngram, "transformer": _transformer, **{a: _recurrent for a in RECURRENT},
            **{a: _min_rnn for a in MIN_RNNS}}


def of(config: ModelConfig) -> Shapes | None:
    """The tensors a freshly built model with ``config`` holds (as its ``state_dict``), or None for an
    architecture not described here."""
    family = FAMILIES.get(config.arch)
    return None if family is None else family(config)
