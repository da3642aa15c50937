"""What every encoder–decoder model offers (the ``seq2seq`` and ``seq2seq-transformer`` families): a source
read once by ``encode``, a target produced one token at a time by ``decode_step``, and the whole target at
once (teacher forcing) by ``forward``. Their families declare ``reads_pairs``: they train on pairs corpora
(``source<TAB>target`` lines) through lmcore/data/pair_batches.py.

Tokens: no extra vocabulary entries. The newline token ends a target (``eos``) and starts the decoder
(``bos``), as fairseq's ``</s>`` does both; sources are padded with it (masked by their lengths) and
targets' padding is ``IGNORE`` in the loss."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import LanguageModel

IGNORE = -100  # padding of the target a batch predicts: no loss there
NEWLINE = "\n"


def special_ids(vocab, tok=None) -> tuple[int, int]:
    """(bos, eos) in ``vocab``: both the newline token (the tokenizer ``tok``'s: a byte-level BPE writes it
    "Ċ"); ConfigError when the vocabulary has none."""
    pieces = tok.tokenize(NEWLINE) if tok is not None else [NEWLINE]
    token = pieces[0] if len(pieces) == 1 else NEWLINE
    if token not in vocab:
        raise ConfigError("the vocabulary has no newline token: a pairs corpus needs more than one line")
    i = vocab[token]
    return i, i


def valid_mask(src_len: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width) True where a source position holds a token, False on padding."""
    return torch.arange(width, device=src_len.device)[None, :] < src_len[:, None]


def masked_softmax(scores: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis that gives padded source positions weight 0 (d2l's masked_softmax, with
    -inf instead of -1e6: exactly 0). scores: (B, ..., S); src_len: (B,)."""
    mask = valid_mask(src_len, scores.shape[-1])
    mask = mask.view(mask.shape[0], *([1] * (scores.dim() - 2)), mask.shape[1])
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def weights_layout(model, make):
    """``make(model)``, kept on the model while none of its parameters changed (a fast decoder's weights laid
    out once, not per reply; an optimizer step or reading a checkpoint changes a parameter's version).
    Parameters made under ``torch.inference_mode`` track no version: laid out each time."""
    params = model.__dict__.get("_weights_params")  # the same objects while no module is added or removed
    if params is None:
        params = model.__dict__["_weights_params"] = list(model.parameters())
    if any(p.is_inference() for p in params):
        return make(model)
    key = tuple((p.data_ptr(), p._version) for p in params)
    cached = model.__dict__.get("_weights_layout")
    if cached is None or cached[0] != key:
        cached = (key, make(model))
        model.__dict__["_weights_layout"] = cached
    return cached[1]


class EncoderDecoder(LanguageModel):
    """The interface both encoder–decoder families implement (their models subclass this)."""

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> Any:
        """src (B, S) ids padded, src_len (B,): the decoder's first state for these sources."""
        raise NotImplementedError

    def decode_step(self, token: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """token (B,): logits (B, V) of the next token, and the new state."""
        raise NotImplementedError

    def select_state(self, state: Any, index: torch.Tensor) -> Any:
        """The state's rows ``index`` (K,), picked or repeated (beams of one source)."""
        raise NotImplementedError

    def fast_decoder(self) -> Any:
        """A faster decoder than ``decode_step`` for the model as it is now (its device, dtype, mode), or None.
        It offers ``start(src, src_len)``, ``step(tokens) -> logits`` (rows, vocab) as a float32 numpy array,
        and ``select(rows)``, and computes what ``encode`` and ``decode_step`` compute
        (lmcore/generation/seq2seq_decode.py uses it)."""
        return None

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Teacher forcing: tgt_in (B, T) starts with bos; logits (B, T, V)."""
        raise NotImplementedError

    def alignment(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, (heads, T, S): how much each target position reads each source token (rows sum to 1
        over the valid source)."""
        raise ConfigError(f"this {self.config.arch} model has no attention to show")

    def train_loss(self, x, y, state=None, run=None):
        """x = (src, src_len, tgt_in), y = tgt_out (B, T) with IGNORE on padding: the mean cross-entropy per
        target token."""
        src, src_len, tgt_in = x
        logits = (run or self)(src, src_len, tgt_in)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE), None

    def step(self, token, state):
        raise ConfigError(f"a {self.config.arch} model answers a source: use it through lmcore generate")
