"""Where an encoder-decoder looks (models whose family ``reads_pairs``): for one source and its reply (the
model's greedy reply, or a target given), the alignment of the cross-attention — rows the target tokens,
columns the source tokens, each row summing to 1 over the source — per layer and head, and for models
that have them (the transformer) the encoder's and the decoder's self-attention."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..models import listed, showing

KINDS = ("cross", "encoder", "decoder")
EOS_LABEL = "<eos>"


@dataclass
class AlignmentView:
    """``source`` tokens; ``target`` the tokens each decoder step wrote (the rows: the reply, then
    ``<eos>`` when it ended there); ``target_in`` what the decoder read at each step (``<eos>`` as its start
    token, then the reply); ``maps``: kind -> per layer (heads, rows, columns); ``reply`` its text and
    ``ended`` whether it ended at ``<eos>`` (False: cut at the model's limit)."""

    source: list[str]
    target: list[str]
    target_in: list[str]
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    reply: str = ""
    ended: bool = True

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if self.maps.get(k))

    def layers(self, kind: str = "cross") -> int:
        return len(self._maps(kind))

    def heads(self, kind: str = "cross") -> int:
        maps = self._maps(kind)
        return maps[0].shape[0] if maps else 0

    def _maps(self, kind: str) -> list[np.ndarray]:
        if kind not in self.kinds:
            raise ConfigError(f"this model has no {kind} attention to show: it has {', '.join(self.kinds)}")
        return self.maps[kind]

    def labels(self, kind: str = "cross") -> tuple[list[str], list[str]]:
        """(row labels, column labels) of ``kind``'s maps."""
        self._maps(kind)
        return {"cross": (self.target, self.source), "encoder": (self.source, self.source),
                "decoder": (self.target, self.target_in)}[kind]

    def matrix(self, kind: str = "cross", layer: int = 0, head: int = 0) -> np.ndarray:
        maps = self._maps(kind)
        if not 0 <= layer < len(maps):
            raise ConfigError(f"layer must be between 0 and {len(maps) - 1} (got {layer})")
        if not 0 <= head < maps[layer].shape[0]:
            raise ConfigError(f"head must be between 0 and {maps[layer].shape[0] - 1} (got {head})")
        return maps[layer][head]


def _maps(model, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, list[np.ndarray]]:
    n, t = src.shape[1], tgt_in.shape[1]
    src_len = torch.tensor([n], device=src.device)
    with torch.no_grad():
        out = {"cross": [m[..., :t, :n] for m in model.alignment(src, src_len, tgt_in)]}
        more = getattr(model, "self_attention", None)  # encoder/decoder self-attention, where the model has it
        if more is not None:
            out.update(more(src, src_len, tgt_in))
    return {k: [m.detach().float().cpu().numpy() for m in v] for k, v in out.items()}


def alignment_view(gen, source: str, target: str | None = None) -> AlignmentView:
    """The attention of ``gen``'s encoder-decoder for ``source`` and ``target`` (None: its greedy reply)."""
    from ..generation.seq2seq_decode import greedy
    from ..generation.translate import encode_source
    from ..models.encdec import special_ids

    model = gen.model
    if not model.family.reads_pairs or not model.shows_attention:
        raise ConfigError(f"this {model.config.arch} model has no source-target alignment to show: alignments "
                          f"are shown for {listed(showing('attention'))} models that read pairs, with attention")
    if not gen.tokenizer.tokenize(source):
        raise ConfigError("the source is empty: give the text whose reply to align (--text)")
    limit = int(model.config.max_len)
    src_ids, _ = encode_source(gen.vocab, gen.tokenizer, source, limit)
    bos, eos = special_ids(gen.vocab, gen.tokenizer)
    was = model.training
    model.eval()
    try:
        if target is None:
            r = greedy(model, src_ids, bos, eos)
            ids, ended = r.ids, r.ended
        else:
            ids = [gen.vocab.token_to_idx.get(t, 0) for t in gen.tokenizer.tokenize(target)][:limit]
            ended = len(ids) < limit
        out = ids + [eos] if ended else ids
        tgt_in = torch.tensor([[bos] + out[:-1]], device=gen.device)  # out holds one token at least
        maps = _maps(model, torch.tensor([src_ids], device=gen.device), tgt_in)
    finally:
        model.train(was)
    tokens = gen.vocab.decode(ids)
    shown = gen.tokenizer.pieces(tokens) if tokens else []
    rows = shown + ([EOS_LABEL] if ended else [])
    return AlignmentView(gen.tokenizer.pieces(gen.vocab.decode(src_ids)), rows, [EOS_LABEL] + rows[:-1],
                         maps, gen.tokenizer.join(tokens), ended)
