"""Where a transformer looks: the attention weights of each layer and head over the last tokens of a
text (computed only when asked, outside the fast attention path), and for each head what it mostly
attends to."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from ..models import listed, showing

PATTERNS = ("the token itself", "the previous token", "the first token", "the start of the line",
            "the same token earlier", "the token after the same one earlier")


@dataclass
class AttentionView:
    tokens: list[str]            # the tokens read (at most the model's context), first to last
    weights: list[np.ndarray]    # per layer: (heads, tokens, tokens), rows sum to 1; causal but BERT's
    values: list[np.ndarray]     # per layer: (heads, tokens, head size)

    @property
    def layers(self) -> int:
        return len(self.weights)

    @property
    def heads(self) -> int:
        return self.weights[0].shape[0] if self.weights else 0

    def matrix(self, layer: int, head: int) -> np.ndarray:
        if not 0 <= layer < self.layers:
            raise ConfigError(f"layer must be between 0 and {self.layers - 1} (got {layer})")
        if not 0 <= head < self.heads:
            raise ConfigError(f"head must be between 0 and {self.heads - 1} (got {head})")
        return self.weights[layer][head]

    def pattern_masks(self) -> dict[str, np.ndarray]:
        """For each pattern, a (query, key) mask of the keys that fit it."""
        t = len(self.tokens)
        q, k = np.arange(t)[:, None], np.arange(t)[None, :]
        line_start = np.zeros(t, dtype=int)
        for i in range(1, t):
            line_start[i] = i if self.tokens[i - 1].endswith("\n") else line_start[i - 1]
        toks = np.array(self.tokens, dtype=object)
        same = (toks[:, None] == toks[None, :]) & (k < q)
        after_same = np.zeros((t, t), dtype=bool)
        after_same[:, 1:] = same[:, :-1] & (k[:, 1:] < q)  # key j follows an earlier copy of the query's token
        return {PATTERNS[0]: k == q, PATTERNS[1]: k == q - 1, PATTERNS[2]: (k == 0) & (q > 0),
                PATTERNS[3]: (k == line_start[:, None]) & (k != q), PATTERNS[4]: same, PATTERNS[5]: after_same}

    def head_patterns(self) -> list[list[dict]]:
        """Per layer and head: the mean attention mass each pattern gets (over queries from the second
        token on), likeliest first."""
        masks = self.pattern_masks()
        out = []
        for w in self.weights:
            layer = []
            for head in w:
                rows = head[1:] if len(head) > 1 else head
                mass = {name: float((rows * m[len(m) - len(rows):]).sum(1).mean()) for name, m in masks.items()}
                layer.append([{"pattern": n, "mass": v} for n, v in sorted(mass.items(), key=lambda kv: -kv[1])])
            out.append(layer)
        return out


def attention_view(gen, text: str) -> AttentionView:
    """The attention of ``gen``'s model (a transformer, a BERT) over the last tokens of ``text`` (up to its
    context); ``gen``: a Generator, or anything with its ``model``, ``vocab``, ``tokenizer`` and ``device``."""
    model = gen.model
    if not model.shows_attention:
        raise ConfigError(f"'{model.config.arch}' models have no attention to show: attention is shown "
                          f"for {listed(showing('attention'))} models")
    window = model.context_window
    tokens = gen.tokenizer.tokenize(text)[-window:] if window else gen.tokenizer.tokenize(text)
    if not tokens:
        raise ConfigError("the text is empty")
    ids = torch.tensor([gen.vocab.token_to_idx.get(t, 0) for t in tokens], device=gen.device)
    maps = model.attention_maps(ids)
    pieces = gen.tokenizer.pieces(tokens)
    return AttentionView(pieces, [w.float().cpu().numpy() for w, _ in maps], [v.float().cpu().numpy() for _, v in maps])
