"""The seq2seq transformer's tensors from its config, torch-free."""
from __future__ import annotations

from ..shapes import Shapes, linear, norm


def _attention(name: str, h: int) -> Shapes:
    return {**linear(f"{name}.q", h, h), **linear(f"{name}.kv", h, 2 * h), **linear(f"{name}.out", h, h)}


def _mlp(name: str, h: int, f: int) -> Shapes:
    return {**linear(f"{name}.fc", h, f), **linear(f"{name}.proj", f, h)}


def of(c) -> Shapes:
    v, h, f = c.vocab_size, c.hidden, c.ffn
    out: Shapes = {"src_emb.weight": (v, h), "tgt_emb.weight": (v, h)}
    if c.pos == "learned":
        out.update({"src_pos.weight": (c.max_len, h), "tgt_pos.weight": (c.max_len, h)})
    for i in range(c.num_layers):
        b = f"encoder.{i}"
        out.update({**norm(f"{b}.ln1", h), **_attention(f"{b}.attn", h), **norm(f"{b}.ln2", h), **_mlp(f"{b}.mlp", h, f)})
    for i in range(c.num_layers):
        b = f"decoder.{i}"
        out.update({**norm(f"{b}.ln1", h), **_attention(f"{b}.attn", h), **norm(f"{b}.ln2", h),
                    **_attention(f"{b}.cross", h), **norm(f"{b}.ln3", h), **_mlp(f"{b}.mlp", h, f)})
    return {**out, **norm("enc_ln", h), **norm("dec_ln", h), **linear("head", h, v)}
