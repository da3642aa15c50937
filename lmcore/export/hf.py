"""The transformer as a Hugging Face ``transformers`` model that ``AutoModelForCausalLM.from_pretrained``
loads without remote code, with its tokenizer (``AutoTokenizer``).

lmplay's blocks are GPT-2's: pre-LayerNorm (eps 1e-5), biases everywhere but the output layer, the exact
GELU (``activation_function="gelu"``, not GPT-2's tanh approximation ``gelu_new``), a 4x MLP, tied or
untied output weights. Learned positions map onto ``GPT2LMHeadModel`` (its Conv1D layers hold the
transposed weights). Rotary positions map onto ``GPTNeoXForCausalLM`` with the rotation on every
channel (``rotary_pct=1``, base 10000) and sequential residuals (``use_parallel_residual=False``):
GPT-NeoX packs each head's query, key and value together and rotates the two halves of a head
(channel j with j + d/2) where lmplay rotates neighbours (2j with 2j + 1), so the query and key rows
of each head are permuted (even channels first, then odd: attention scores do not change).

The tokenizer may have ids beyond the model's vocabulary (BPE tokens the model never saw, see
:mod:`.tokenizer`): the exported embedding repeats ``<unk>``'s row for them, and the generation config
suppresses them and ``<unk>`` itself, as lmcore's sampling never emits ``<unk>``."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import LmError
from ..models import TransformerLM
from . import tokenizer as hf_tokenizer

TOLERANCE = 1e-3  # a larger difference of logits fails the export (parity is ~1e-6)


def _config(model: TransformerLM, vocab_size: int):
    c = model.config
    common = dict(vocab_size=vocab_size, tie_word_embeddings=c.tie_weights, bos_token_id=None, eos_token_id=None,
                  pad_token_id=None, use_cache=True)
    if c.pos == "learned":
        from transformers import GPT2Config

        return GPT2Config(n_positions=c.context, n_embd=c.hidden, n_layer=c.num_layers, n_head=c.heads,
                          n_inner=4 * c.hidden, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0,
                          attn_pdrop=0.0, layer_norm_epsilon=1e-5, scale_attn_weights=True, **common)
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(hidden_size=c.hidden, num_hidden_layers=c.num_layers, num_attention_heads=c.heads,
                         intermediate_size=4 * c.hidden, hidden_act="gelu", max_position_embeddings=c.context,
                         rotary_pct=1.0, rotary_emb_base=10000.0, use_parallel_residual=False, layer_norm_eps=1e-5,
                         attention_dropout=0.0, hidden_dropout=0.0, attention_bias=True, **common)


def _grown(w: torch.Tensor, extra: int) -> torch.Tensor:
    """An embedding or output matrix with ``extra`` more rows, each a copy of row 0 (<unk>)."""
    return torch.cat([w, w[:1].expand(extra, -1)]) if extra else w


def _gpt2_state(model: TransformerLM, extra: int) -> dict[str, torch.Tensor]:
    sd = {"transformer.wte.weight": _grown(model.wte.weight, extra), "transformer.wpe.weight": model.wpe.weight,
          "transformer.ln_f.weight": model.ln_f.weight, "transformer.ln_f.bias": model.ln_f.bias}
    for i, b in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        for ours, theirs in ((b.ln_1, "ln_1"), (b.ln_2, "ln_2")):
            sd[p + theirs + ".weight"], sd[p + theirs + ".bias"] = ours.weight, ours.bias
        for ours, theirs in ((b.attn.c_attn, "attn.c_attn"), (b.attn.c_proj, "attn.c_proj"),
                             (b.mlp.c_fc, "mlp.c_fc"), (b.mlp.c_proj, "mlp.c_proj")):
            sd[p + theirs + ".weight"], sd[p + theirs + ".bias"] = ours.weight.t(), ours.bias  # Conv1D: (in, out)
    if not model.config.tie_weights:
        sd["lm_head.weight"] = _grown(model.lm_head.weight, extra)
    return sd


def _neox_qkv(t: torch.Tensor, heads: int) -> torch.Tensor:
    """Our (q; k; v) rows, heads within each, rotated in neighbouring pairs -> GPT-NeoX's (head: q, k, v)
    rows with each head's query and key channels ordered even ones first, then odd ones."""
    q, k, v = (z.reshape(heads, -1, *t.shape[1:]) for z in t.chunk(3))
    hd = q.shape[1]
    perm = torch.cat([torch.arange(0, hd, 2), torch.arange(1, hd, 2)])
    return torch.stack([q[:, perm], k[:, perm], v], 1).reshape(t.shape)


def _neox_state(model: TransformerLM, extra: int, head_name: str) -> dict[str, torch.Tensor]:
    heads = model.config.heads
    sd = {"gpt_neox.embed_in.weight": _grown(model.wte.weight, extra),
          "gpt_neox.final_layer_norm.weight": model.ln_f.weight, "gpt_neox.final_layer_norm.bias": model.ln_f.bias,
          head_name: _grown(model.lm_head.weight, extra)}
    for i, b in enumerate(model.blocks):
        p = f"gpt_neox.layers.{i}."
        sd[p + "attention.query_key_value.weight"] = _neox_qkv(b.attn.c_attn.weight, heads)
        sd[p + "attention.query_key_value.bias"] = _neox_qkv(b.attn.c_attn.bias, heads)
        for ours, theirs in ((b.ln_1, "input_layernorm"), (b.ln_2, "post_attention_layernorm"),
                             (b.attn.c_proj, "attention.dense"), (b.mlp.c_fc, "mlp.dense_h_to_4h"),
                             (b.mlp.c_proj, "mlp.dense_4h_to_h")):
            sd[p + theirs + ".weight"], sd[p + theirs + ".bias"] = ours.weight, ours.bias
    return sd


def convert(model: TransformerLM, extra: int = 0):
    """The ``transformers`` model holding ``model``'s weights (``extra`` more token rows, see above)."""
    from transformers import AutoModelForCausalLM, GenerationConfig

    if not isinstance(model, TransformerLM):
        raise LmError(f"'hf' has no architecture for {model.config.arch} models: use --format onnx")
    model = model.float().eval()
    c = model.config
    config = _config(model, c.vocab_size + extra)
    hf = AutoModelForCausalLM.from_config(config)
    names = set(hf.state_dict())
    if c.pos == "learned":
        sd = _gpt2_state(model, extra)
    else:
        sd = _neox_state(model, extra, "embed_out.weight" if "embed_out.weight" in names else "lm_head.weight")
    missing, unexpected = hf.load_state_dict({k: v.detach().contiguous() for k, v in sd.items()}, strict=False)
    missing = [k for k in missing if not (c.tie_weights and k in ("lm_head.weight", "embed_out.weight"))
               and not k.endswith((".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias"))]
    if missing or unexpected:
        raise LmError(f"this transformers version lays the model out differently (missing {missing[:3]}, "
                      f"unexpected {unexpected[:3]}): install the version lmplay names in its 'export' extra")
    if c.tie_weights:
        hf.tie_weights()
    hf.generation_config = GenerationConfig(
        do_sample=False, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        suppress_tokens=[0, *range(c.vocab_size, c.vocab_size + extra)])  # lmcore never emits <unk>
    return hf.eval()


@contextlib.contextmanager
def _quiet():
    """transformers' progress bars and notices kept off the terminal."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def write(model: TransformerLM, vocab, tokenizer, folder: Path, source: dict) -> dict:
    """Write the transformers model, its tokenizer and a README into ``folder`` and check the model as
    loaded back against lmcore's logits."""
    with _quiet():
        return _write(model, vocab, tokenizer, folder, source)


def _write(model: TransformerLM, vocab, tokenizer, folder: Path, source: dict) -> dict:
    from transformers import PreTrainedTokenizerFast

    hf_tok, extra = hf_tokenizer.build(tokenizer, vocab)
    same, total = hf_tokenizer.agreement(hf_tok, tokenizer, vocab)
    model = model.float().eval()
    hf = convert(model, extra)
    hf.save_pretrained(str(folder))
    PreTrainedTokenizerFast(tokenizer_object=hf_tok, clean_up_tokenization_spaces=False,
                            model_max_length=model.config.context).save_pretrained(str(folder))
    arch = "GPT2LMHeadModel" if model.config.pos == "learned" else "GPTNeoXForCausalLM"
    (folder / "README.md").write_text(readme(model, source, arch, extra), encoding="utf-8")
    diff, tokens = check(folder, model)
    if not diff <= TOLERANCE:
        raise LmError(f"the transformers model's logits differ from lmcore's by {diff:.3g} (more than "
                      f"{TOLERANCE:g}): nothing was written; please report this with the model's settings")
    c = model.config
    return {"arch": c.arch, "architecture": arch, "vocab_size": c.vocab_size, "tokenizer_ids": c.vocab_size + extra,
            "source": source, "check": {"runtime": "transformers", "max_abs_logit_diff": diff, "tokens": tokens,
                      "tokenizer_same": same, "tokenizer_tokens": total}}


def check(folder: Path, model: TransformerLM) -> tuple[float, int]:
    """The largest difference between the logits of the folder's model (loaded as a user would) and
    lmcore's, over one context of tokens; and how many tokens that was."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    c = model.config
    ids = torch.from_numpy(np.random.default_rng(0).integers(1, max(c.vocab_size, 2), (1, c.context))).clamp(max=c.vocab_size - 1)
    with torch.no_grad():
        ours = model(ids)[0][0]
        theirs = hf(ids).logits[0, :, : c.vocab_size]
    return float((ours - theirs).abs().max()), c.context


def readme(model: TransformerLM, source: dict, arch: str, extra: int) -> str:
    c = model.config
    return (f"# {source.get('name')}: an lmplay transformer as a Hugging Face model\n\n"
            f"Exported by `lmcore export` from lmplay's model '{source.get('name')}' (step {source.get('step')}): "
            f"{c.num_layers} layers, width {c.hidden}, {c.heads} heads, {c.pos} positions, context {c.context}, "
            f"as `{arch}`.\n\n"
            "```python\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            "model = AutoModelForCausalLM.from_pretrained(\".\")\n"
            "tok = AutoTokenizer.from_pretrained(\".\")\n"
            "ids = tok(\"The \", return_tensors=\"pt\").input_ids\n"
            "out = model.generate(ids, max_new_tokens=50)  # greedy, as lmcore --temperature 0\n"
            "print(tok.decode(out[0]))\n"
            "```\n\n"
            f"The model reads at most {c.context} tokens (prompt and generated text together): lmcore slides "
            "its window past that, transformers does not. Generation never emits `<unk>` (id 0), as lmcore's "
            "sampling does not"
            + (f"; ids from {c.vocab_size} on are BPE tokens the model never saw: it reads them as `<unk>` and "
               "never emits them.\n" if extra else ".\n"))
