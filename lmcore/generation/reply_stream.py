"""An encoder–decoder's reply to one source, token by token (the app's chat streams it): each token as a
:class:`TokenOut` (its text, the model's probability of it and the top alternatives), sampled with the
settings' controls (temperature 0: greedy) and read at every token, or, with ``settings.beam``, the beam
search's best reply given whole at its end. ``info`` says what happened to the source's unknown tokens;
a source that is empty or longer than the model's limit is refused (ConfigError, one line) when the
stream is made."""
from __future__ import annotations

import threading
from typing import Iterator

import numpy as np

from ..models.encdec import special_ids
from .sampling_settings import SamplingSettings
from .seq2seq_decode import beam_search, sample_steps, target_limit
from .token_out import TokenOut
from .translate import encode_source


class ReplyStream:
    def __init__(self, gen, source: str, settings: SamplingSettings | None = None, unknown: str = "unk",
                 stop_event: threading.Event | None = None) -> None:
        """``gen``: a Generator of a family that ``reads_pairs`` (its model, vocabulary and tokenizer)."""
        self.gen, self.settings = gen, (settings or SamplingSettings()).validate()
        self.stop_event = stop_event or threading.Event()
        self.ids, self.info = encode_source(gen.vocab, gen.tokenizer, source, int(gen.model.config.max_len), unknown)
        self.bos, self.eos = special_ids(gen.vocab, gen.tokenizer)
        self.limit = target_limit(gen.model, self.settings.max_tokens)
        self.ended = False  # True once the reply reached the end token (False: stopped, or cut at the limit)

    def _token(self, index: int, token_id: int, prob: float, alternatives, piece) -> TokenOut:
        vocab, tok = self.gen.vocab, self.gen.tokenizer
        alts = [(tok.display(vocab.idx_to_token[int(j)]), float(p)) for j, p in zip(*alternatives)]
        return TokenOut(index, int(token_id), piece(vocab.idx_to_token[int(token_id)]), float(prob), alts)

    def __iter__(self) -> Iterator[TokenOut]:
        model, s = self.gen.model, self.settings
        piece = self.gen.tokenizer.piece_decoder(None)
        if s.beam:
            r = beam_search(model, self.ids, self.bos, self.eos, s.beam, self.limit, s.length_penalty)
            self.ended = r.ended
            for i, (t, p) in enumerate(zip(r.ids, r.probs)):
                yield self._token(i, t, p, (np.array([t]), np.array([p])), piece)
            return
        rng = np.random.default_rng(None if s.seed is None else int(s.seed))
        for i, step in enumerate(sample_steps(model, self.ids, self.bos, self.eos, s, rng, self.limit)):
            if self.stop_event.is_set():
                return
            if step.eos:
                self.ended = True
                return
            yield self._token(i, step.token_id, step.prob, step.alternatives, piece)
