"""A model as an ONNX *step* model: the token(s) just read and the state in, the next token's logits
and the new state out, so any ONNX runtime can generate with it as lmcore's decoder does.

- n-gram: the state is the last order-1 tokens (-1 before the text starts); the step is the backed-off
  table lookup, the counts kept as flat arrays (each count with its context's code) so a lookup is a
  comparison and a scatter of fixed shapes;
- rnn/gru/lstm (fused and scratch, which hold the same weights), mingru/minlstm: the state is the
  model's (h, and c for the LSTM); the step is the cell equations of ``step``;
- transformer: ``tokens`` (1, T), ``position`` (where the first of them is), the keys and values of
  the tokens before them (layers, heads, S, head size; S = 0 at the start) in, the logits of every one
  of the T tokens and the keys/values with the T tokens appended out. Past the context the caller
  slides the window as lmcore does (``lmplay.json`` and the README say how): rotary positions drop the
  oldest entry, learned positions start again from the newest half-context of tokens at position 0.

Ids from ``len(vocab)`` on (BPE tokens the model never saw, see :mod:`.tokenizer`) are read as
``<unk>``, as lmcore reads them."""
from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LmError
from ..models import LanguageModel, MinRNNLM, NGramModel, RecurrentLM, TransformerLM
from . import tokenizer as hf_tokenizer

FORMAT = "lmplay-onnx-step"
CHECK_TOKENS = 200        # tokens the export is checked over against lmcore's decoder
TOLERANCE = 1e-3          # a larger difference of logits fails the export (parity is ~1e-6)


def _known(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Ids outside the model's vocabulary read as <unk> (0)."""
    return torch.where((ids >= 0) & (ids < vocab_size), ids, torch.zeros_like(ids))


class RecurrentStep(nn.Module):
    """RNN/GRU/LSTM and minGRU/minLSTM: ``token`` (1,) and the state in, logits (1, V) and the state out."""

    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model
        self.pair = isinstance(model.init_state(1), tuple)  # (h, c): the LSTM's

    def forward(self, token, *state):
        logits, new = self.model.step(_known(token, self.model.config.vocab_size), tuple(state) if self.pair else state[0])
        return (logits, *new) if self.pair else (logits, new)


class NGramStep(nn.Module):
    """The n-gram: ``token`` (1,) and ``history`` (order-1,) in, logits (1, V) and the new history out."""

    def __init__(self, model: NGramModel):
        super().__init__()
        c = model.config
        self.order, self.v, self.eps = c.order, c.vocab_size, float(c.epsilon)
        self.register_buffer("unigram", model.unigram.float().clone())
        for k in range(2, c.order + 1):
            codes, ptr = getattr(model, f"ctx_codes_{k}"), getattr(model, f"row_ptr_{k}")
            self.register_buffer(f"codes_{k}", codes.clone())
            self.register_buffer(f"totals_{k}", getattr(model, f"ctx_counts_{k}").float().clone())
            self.register_buffer(f"entry_ctx_{k}", torch.repeat_interleave(codes, ptr[1:] - ptr[:-1]))
            self.register_buffer(f"cols_{k}", getattr(model, f"cols_{k}").clone())
            self.register_buffer(f"vals_{k}", getattr(model, f"vals_{k}").float().clone())

    def forward(self, token, history):
        n, v, eps = self.order, self.v, self.eps
        hist = torch.cat([history[1:], _known(token, v)]) if n > 1 else history
        p = torch.full((v,), 1.0 / v)
        p = (self.unigram + eps * p) / (self.unigram.sum() + eps)
        for k in range(2, n + 1):
            ctx = hist[n - k:]
            valid = (ctx >= 0).all()
            code = torch.zeros((), dtype=torch.long)
            for j in range(k - 1):
                code = code * v + ctx[j].clamp(min=0)
            vals = getattr(self, f"vals_{k}")
            hit = (getattr(self, f"entry_ctx_{k}") == code) & valid
            counts = torch.zeros(v).scatter_add(0, getattr(self, f"cols_{k}"), torch.where(hit, vals, torch.zeros_like(vals)))
            totals = getattr(self, f"totals_{k}")
            total = torch.where((getattr(self, f"codes_{k}") == code) & valid, totals, torch.zeros_like(totals)).sum()
            p = (counts + eps * p) / (total + eps)
        return torch.log(p)[None], hist


class TransformerStep(nn.Module):
    """The transformer over ``tokens`` (1, T) after S cached positions: logits (T, V), keys and values
    (layers, heads, S + T, head size)."""

    def __init__(self, model: TransformerLM):
        super().__init__()
        self.model, c = model, model.config
        self.heads, self.hd = c.heads, c.hidden // c.heads
        self.register_buffer("inv", 10000.0 ** (-torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))

    def _rotate(self, z, cos, sin):
        z1, z2 = z[..., 0::2], z[..., 1::2]
        return torch.stack((z1 * cos - z2 * sin, z1 * sin + z2 * cos), -1).flatten(-2)

    def forward(self, tokens, position, past_keys, past_values):
        m = self.model
        t, s = tokens.shape[1], past_keys.shape[2]
        pos = position + torch.arange(t)
        x = m.wte(_known(tokens, m.config.vocab_size))
        if m.wpe is not None:
            x = x + m.wpe(pos)[None]
        else:
            ang = pos.float()[:, None] * self.inv[None, :]
            cos, sin = ang.cos(), ang.sin()
        mask = torch.arange(s + t)[None, :] <= (s + torch.arange(t))[:, None]  # each sees the past and itself
        keys, values = [], []
        for layer, b in enumerate(m.blocks):
            width = x.shape[-1]
            q, k, v = b.attn.c_attn(b.ln_1(x)).split(width, dim=2)
            q, k, v = (z.view(1, t, self.heads, self.hd).transpose(1, 2) for z in (q, k, v))
            if m.wpe is None:
                q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            k = torch.cat([past_keys[layer][None], k], 2)
            v = torch.cat([past_values[layer][None], v], 2)
            keys.append(k[0])
            values.append(v[0])
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(1, t, width)
            x = x + b.attn.c_proj(y)
            x = x + b.mlp(b.ln_2(x))
        return m.lm_head(m.ln_f(x))[0], torch.stack(keys), torch.stack(values)


def _spec(model: LanguageModel):
    """(wrapper, example inputs, input names, output names, dynamic shapes, state description)."""
    c = model.config
    if isinstance(model, TransformerLM):
        shape = [c.num_layers, c.heads, 0, c.hidden // c.heads]
        past = torch.zeros(c.num_layers, c.heads, 2, c.hidden // c.heads)
        seq, cached = torch.export.Dim("tokens", min=1, max=1 << 16), torch.export.Dim("cached", min=0, max=1 << 16)
        return (TransformerStep(model), (torch.ones(1, 3, dtype=torch.long), torch.tensor(2), past, past.clone()),
                ["tokens", "position", "past_keys", "past_values"], ["logits", "keys", "values"],
                ({1: seq}, None, {2: cached}, {2: cached}),
                [{"name": "past_keys", "shape": shape, "dtype": "float32", "fill": 0.0},
                 {"name": "past_values", "shape": shape, "dtype": "float32", "fill": 0.0}])
    token = torch.ones(1, dtype=torch.long)
    if isinstance(model, NGramModel):
        state = [{"name": "history", "shape": [c.order - 1], "dtype": "int64", "fill": -1}]
        return (NGramStep(model), (token, torch.full((c.order - 1,), -1, dtype=torch.long)), ["token", "history"],
                ["logits", "new_history"], None, state)
    if isinstance(model, (RecurrentLM, MinRNNLM)):
        names = ["h", "c"] if isinstance(model.init_state(1), tuple) else ["h"]
        shape = [c.num_layers, 1, c.hidden]
        return (RecurrentStep(model), (token, *(torch.zeros(shape) for _ in names)), ["token", *names],
                ["logits", *(f"new_{n}" for n in names)], None,
                [{"name": n, "shape": shape, "dtype": "float32", "fill": 0.0} for n in names])
    raise LmError(f"ONNX export knows no step for a {c.arch} model")


@contextlib.contextmanager
def _quiet():
    """torch.onnx's progress lines, deprecation warnings and log messages (torch, onnxscript, onnx_ir)
    kept off the terminal."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(before)


def write(model: LanguageModel, vocab, tokenizer, folder: Path, source: dict) -> dict:
    """Write model.onnx, tokenizer.json, vocab.json, lmplay.json and README.md into ``folder`` and check
    the ONNX model against lmcore's decoder; returns what ``lmplay.json`` says plus the check."""
    model = model.float().eval()
    c = model.config
    wrapper, args, inputs, outputs, dynamic, state = _spec(model)
    big = sum(p.numel() for p in model.state_dict().values()) * 4 > (1 << 30)  # ONNX files stop at 2 GB
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(wrapper, args, str(folder / "model.onnx"), input_names=inputs, output_names=outputs,
                              dynamic_shapes=dynamic, dynamo=True, external_data=big, verbose=False)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; one line for the user
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise LmError(f"torch could not export the {c.arch} model to ONNX ({first})") from None
    hf, extra = hf_tokenizer.build(tokenizer, vocab)
    hf.save(str(folder / "tokenizer.json"))
    same, total = hf_tokenizer.agreement(hf, tokenizer, vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab.idx_to_token, ensure_ascii=False), encoding="utf-8")
    meta = {"format": FORMAT, "version": 1, "arch": c.arch, "vocab_size": c.vocab_size,
            "tokenizer_ids": c.vocab_size + extra, "tokenizer": {"level": tokenizer.level, "prep": tokenizer.prep},
            "inputs": inputs, "outputs": outputs, "state": state, "model": c.to_dict(), "source": source}
    if isinstance(model, TransformerLM):
        meta["context"] = c.context
        meta["window"] = ("rotary: before a step with 'context' entries cached, drop the oldest one (positions go on)"
                          if c.pos == "rotary" else
                          "learned: before a step with 'context' entries cached, start again: feed the newest "
                          "max(context // 2, 1) tokens (the new one last) at position 0 with nothing cached")
    (folder / "lmplay.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "README.md").write_text(readme(model, source), encoding="utf-8")
    diff = check(folder, model)
    if not diff <= TOLERANCE:
        raise LmError(f"the ONNX model's logits differ from lmcore's by {diff:.3g} (more than {TOLERANCE:g}): "
                      f"nothing was written; please report this with the model's settings")
    return {**meta, "check": {"runtime": "onnxruntime", "max_abs_logit_diff": diff, "tokens": CHECK_TOKENS,
                                "tokenizer_same": same, "tokenizer_tokens": total}}


class Runner:
    """Generation from an exported folder with onnxruntime, following lmplay.json (what the README shows)."""

    def __init__(self, folder: Path):
        import onnxruntime as ort

        self.meta = json.loads((folder / "lmplay.json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.transformer = "context" in self.meta  # a step over a window of keys and values
        self.state = {s["name"]: np.full(s["shape"], s["fill"], s["dtype"]) for s in self.meta["state"]}
        self.pos, self.history = 0, []

    def feed(self, ids: list[int]) -> np.ndarray:
        """Read ``ids`` (a prompt, then one token at a time): the logits of the token after them."""
        if not self.transformer:
            for t in ids:
                logits, *new = self.session.run(None, {"token": np.array([t], np.int64), **self.state})
                self.state = dict(zip(self.state, new))
            return logits[0]
        ctx = self.meta["context"]
        self.history = (self.history + list(ids))[-ctx:]
        if self.state["past_keys"].shape[2] + len(ids) > ctx:  # the window slides
            if self.meta["model"]["pos"] == "rotary":
                keep = ctx - len(ids)
                self.state = {n: a[:, :, a.shape[2] - keep:] for n, a in self.state.items()}
            else:
                ids = self.history[-max(ctx // 2, 1, len(ids)):]
                self.state = {n: a[:, :, :0] for n, a in self.state.items()}
                self.pos = 0
        logits, keys, values = self.session.run(None, {"tokens": np.array([ids], np.int64),
                                                       "position": np.array(self.pos, np.int64), **self.state})
        self.state, self.pos = {"past_keys": keys, "past_values": values}, self.pos + len(ids)
        return logits[-1]


def check(folder: Path, model: LanguageModel, steps: int = CHECK_TOKENS) -> float:
    """The largest difference between the exported model's logits and lmcore's decoder's, token by token
    over a short prompt and ``steps`` tokens of lmcore's greedy text."""
    from ..generation.decoders import decoder_for

    dec, run = decoder_for(model, "cpu"), Runner(folder)
    v = model.config.vocab_size
    ids = [i % v for i in range(1, 4)]
    ours, theirs = dec.prefill(ids), run.feed(ids)
    worst = float(np.abs(ours - theirs).max())
    for _ in range(steps):
        nxt = int(np.argmax(ours[1:])) + 1 if v > 1 else 0
        ours, theirs = dec.step(nxt), run.feed([nxt])
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


_RECURRENT_LOOP = '''\
state = {s["name"]: np.full(s["shape"], s["fill"], s["dtype"]) for s in meta["state"]}

def feed(ids):  # read tokens one at a time: the logits of the next one
    global state
    for t in ids:
        logits, *new = sess.run(None, {"token": np.array([t], np.int64), **state})
        state = dict(zip(state, new))
    return logits[0]
'''

_TRANSFORMER_LOOP = '''\
state = {s["name"]: np.full(s["shape"], s["fill"], s["dtype"]) for s in meta["state"]}
ctx, pos, history = meta["context"], 0, []

def feed(ids):  # read tokens (a prompt, then one at a time): the logits of the next one
    global state, pos, history
    history = (history + ids)[-ctx:]
    if state["past_keys"].shape[2] + len(ids) > ctx:  # past the context the window slides:
{slide}
    logits, keys, values = sess.run(None, {{"tokens": np.array([ids], np.int64),
                                           "position": np.array(pos, np.int64), **state}})
    state, pos = {{"past_keys": keys, "past_values": values}}, pos + len(ids)
    return logits[-1]
'''
_SLIDE = {"rotary": '''\
        # drop the oldest keys and values (rotary positions go on counting)
        state = {n: a[:, :, a.shape[2] - (ctx - len(ids)):] for n, a in state.items()}''',
          "learned": '''\
        # learned positions: start again from the newest half-context, at position 0
        ids, pos = history[-max(ctx // 2, 1, len(ids)):], 0
        state = {n: a[:, :, :0] for n, a in state.items()}'''}

_GREEDY = '''\
ids = tok.encode(PROMPT).ids{cut} or [1]
logits, out = feed(ids), []
for _ in range(LENGTH):  # greedy: the most likely token, never <unk> (id 0), as lmcore does
    out.append(int(np.argmax(logits[1:])) + 1)
    logits = feed([out[-1]])
print(tok.decode(ids + out))
'''


def snippet(model: LanguageModel) -> str:
    """The Python that generates greedy text from the folder (README's code; tests run it)."""
    head = ("import json\nimport numpy as np\nimport onnxruntime as ort\nfrom tokenizers import Tokenizer\n\n"
            "PROMPT, LENGTH = \"The \", 200\n"
            "meta = json.load(open(\"lmplay.json\"))\n"
            "tok = Tokenizer.from_file(\"tokenizer.json\")\n"
            "sess = ort.InferenceSession(\"model.onnx\")\n")
    if isinstance(model, TransformerLM):
        loop = _TRANSFORMER_LOOP.replace("{{", "{").replace("}}", "}").replace("{slide}", _SLIDE[model.config.pos])
        return head + loop + "\n" + _GREEDY.replace("{cut}", "[-ctx:]")
    return head + _RECURRENT_LOOP + "\n" + _GREEDY.replace("{cut}", "")


def readme(model: LanguageModel, source: dict) -> str:
    c = model.config
    if isinstance(model, TransformerLM):
        step = ("`tokens` (1, T) int64, `position` (int64: where the first of them is), `past_keys` and "
                f"`past_values` ({c.num_layers}, {c.heads}, S, {c.hidden // c.heads}) float32 (S = 0 at the start) "
                "in; `logits` (T, V) and `keys`, `values` with the T tokens appended out. The context is "
                f"{c.context} tokens: past it the window slides as the code below does (lmplay.json: `window`).")
    else:
        names = ", ".join(f"`{s['name']}` {tuple(s['shape'])} {s['dtype']}" for s in _spec_state(model))
        step = f"`token` (1,) int64 and the state ({names}) in; `logits` (1, V) and the new state out, in the same order."
    return (f"# {source.get('name', 'model')}: an lmplay {c.arch} model as an ONNX step model\n\n"
            f"Exported by `lmcore export` from lmplay's model '{source.get('name')}' (step {source.get('step')}). "
            f"Files: `model.onnx` (the step model), `tokenizer.json` (a Hugging Face `tokenizers` tokenizer: "
            f"text to the model's ids and back), `vocab.json` (the vocabulary, id to token), `lmplay.json` "
            f"(inputs, state, settings).\n\n"
            f"The step: {step} V = {c.vocab_size}; tokenizer ids from V on are tokens the model never saw "
            f"(it reads them as `<unk>`, id 0).\n\n"
            f"Greedy text with `pip install onnxruntime tokenizers numpy`, run in this folder (the same "
            f"tokens as `lmcore generate {source.get('name')} --prompt 'The ' --length 200 --temperature 0`):\n\n```python\n{snippet(model)}```\n")


def _spec_state(model: LanguageModel) -> list[dict]:
    return _spec(model)[5]
