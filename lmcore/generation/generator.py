"""Streaming generation: warm the model up on the prompt, then yield one token at a time."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import torch

from .decoders import decoder_for
from .one_thread import one_torch_thread
from .token_out import TokenOut
from ..errors import ConfigError, LmError
from ..models import LanguageModel, build_model
from .sampling import SamplingSettings, finite_logits, sample, softmax, top_alternatives
from ..data.pairs import END as PAIR_END, pair_prompt
from ..data.text import Tokenizer
from ..data.vocab import Vocab

MAX_PROMPT_TOKENS = 4096  # a recurrent model's warm-up reads at most this many prompt tokens


@dataclass
class PromptInfo:
    """What happened to the prompt: characters or words not in the vocabulary (mapped to ``<unk>`` or
    dropped, by ``policy``) and whether a long prompt was cut to its most recent tokens."""

    tokens: int = 0
    unknown: list[str] = field(default_factory=list)
    policy: str = "unk"
    truncated: int = 0

    def message(self) -> str | None:
        parts = []
        if self.unknown:
            shown = ", ".join(repr(u) for u in sorted(set(self.unknown))[:10])
            what = "mapped to <unk>" if self.policy == "unk" else "dropped"
            parts.append(f"{len(self.unknown)} prompt token(s) not in the model's vocabulary were {what}: {shown}")
        if self.truncated:
            parts.append(f"the prompt was cut to its last {self.tokens:,} tokens ({self.truncated:,} dropped)")
        return "; ".join(parts) or None


class Stream:
    """An iterator of :class:`TokenOut`; ``info`` tells what happened to the prompt. ``settings`` is read
    at every token, so changing e.g. its temperature takes effect mid-stream. ``stop()`` ends it."""

    def __init__(self, gen: "Generator", prompt_ids: list[int], info: PromptInfo, settings: SamplingSettings,
                 stop_event: threading.Event | None):
        self.gen, self.info, self.settings = gen, info, settings
        self.stop_event = stop_event or threading.Event()
        self._ids = prompt_ids
        self._pieces: list[str] = []
        self.prompt = ""              # the text continued (a pairs model's: the source and a tab)
        self.end: str | None = None   # the reply ends before this text (a pairs model's: the newline)
        self.ended = False            # True once the reply reached ``end`` (False: stopped, or cut at the length)

    @property
    def text(self) -> str:
        """The text generated so far."""
        return "".join(self._pieces)

    def stop(self) -> None:
        self.stop_event.set()

    def __iter__(self) -> Iterator[TokenOut]:
        gen, s = self.gen, self.settings
        vocab, tok = gen.vocab, gen.tokenizer
        rng = np.random.default_rng(None if s.seed is None else int(s.seed))
        history = list(self._ids)
        prev = vocab.idx_to_token[history[-1]] if history and self.info.tokens else None
        piece = tok.piece_decoder(prev)  # the text of each token (a bpe character split over tokens comes whole)
        decoder = gen.decoder()
        tail = ""
        logits = decoder.prefill(history)
        with one_torch_thread(gen.device.type == "cpu"):  # a token at a time (one_thread.py)
            for i in range(s.max_tokens):
                if self.stop_event.is_set():
                    return
                with np.errstate(invalid="ignore"):
                    probs = softmax(logits)
                if probs[0] != probs[0]:  # NaN somewhere in the scores: drop those, or fail with one line
                    logits = finite_logits(logits)
                    probs = softmax(logits)
                nxt = sample(logits, s, history, rng, probs)
                top_i, top_p = top_alternatives(probs, 5)
                alts = [(tok.display(vocab.idx_to_token[j]), p) for j, p in zip(top_i.tolist(), top_p.tolist())]
                text = piece(vocab.idx_to_token[nxt])
                if self.end is not None and self.end in text:  # a pairs model's reply ends at its newline
                    text = text[:text.index(self.end)]
                    self.ended = True
                    if text:
                        self._pieces.append(text)
                        yield TokenOut(i, nxt, text, float(probs[nxt]), alts)
                    return
                self._pieces.append(text)
                history.append(nxt)
                yield TokenOut(i, nxt, text, float(probs[nxt]), alts)
                if s.stop:  # a stop string ends in this token: look at it with the text just before it
                    tail += text
                    if any(stop and stop in tail[-(len(stop) + len(text)):] for stop in s.stop):
                        return
                    tail = tail[-max(1, *(len(stop) for stop in s.stop)):]
                logits = decoder.step(nxt)


class Generator:
    """Generates text from a model with its vocab and tokenizer."""

    def __init__(self, model: LanguageModel, vocab: Vocab, tokenizer: Tokenizer, device: str | torch.device = "cpu",
                 pairs: bool = False):
        """``pairs``: a decoder-only model trained on a pairs corpus: a prompt is a source (a tab is added)
        and the reply ends at the newline."""
        model.check_can_generate()
        self.pairs = pairs
        self.model = model.eval()
        self.vocab, self.tokenizer = vocab, tokenizer
        self.device = torch.device(device)
        self._decoder: tuple[tuple, object] | None = None

    def _weights_key(self) -> tuple | None:
        """Changes whenever a weight is replaced or modified in place (tensors count their in-place
        changes), so a model trained further in this process gets its decoder laid out again."""
        try:
            return tuple((id(p), p._version) for p in self.model.parameters())
        except RuntimeError:  # inference tensors keep no version counter: do not cache
            return None

    def decoder(self):
        """A decoder for one stream; the weights' layout is prepared once and shared while they stay
        the same (a word model's first-layer table can take tens of milliseconds)."""
        if self.model.family.reads_pairs:  # an encoder–decoder: lmcore.generation.translate answers it
            raise ConfigError(f"a {self.model.config.arch} model answers a source (lmcore generate NAME --prompt "
                              f"SOURCE): it does not continue or score text")
        key = self._weights_key()
        if key is not None and self._decoder is not None and self._decoder[0] == key:
            return self._decoder[1].fresh()
        dec = decoder_for(self.model, self.device)
        self._decoder = (key, dec) if key is not None else None
        return dec.fresh() if key is not None else dec

    @classmethod
    def from_store(cls, store, name: str, device: str = "cpu") -> "Generator":
        ck = store.read(name)
        model, vocab, tokenizer = load_model(store, name, ck, device)
        return cls(model, vocab, tokenizer, device, pairs=trained_on_pairs(ck))

    def encode_prompt(self, prompt: str, unknown: str = "unk") -> tuple[list[int], PromptInfo]:
        if unknown not in ("unk", "drop"):
            raise ConfigError("unknown-token policy must be 'unk' or 'drop'")
        tokens = self.tokenizer.tokenize(prompt)
        info = PromptInfo(policy=unknown)
        ids: list[int] = []
        for t in tokens:
            i = self.vocab.token_to_idx.get(t)
            if i is None:
                info.unknown.append(self.tokenizer.display(t))
                if unknown == "drop":
                    continue
                i = 0
            ids.append(i)
        limit = self.model.context_window or MAX_PROMPT_TOKENS
        if len(ids) > limit:
            info.truncated = len(ids) - limit
            ids = ids[-limit:]
        info.tokens = len(ids)
        if not ids:  # empty prompt: start from a line break (or space), as at the start of a paragraph
            start = next((t for s in ("\n", " ") for t in self.tokenizer.split(s)[:1] if t in self.vocab), None)
            ids = [self.vocab[start]] if start else [1 if len(self.vocab) > 1 else 0]
        return ids, info

    def stream(self, prompt: str, settings: SamplingSettings | None = None, unknown: str = "unk",
               stop_event: threading.Event | None = None) -> Stream:
        settings = (settings or SamplingSettings()).validate()
        if self.pairs:
            prompt = pair_prompt(prompt)
        ids, info = self.encode_prompt(prompt, unknown)
        if settings.beam:
            from .beam import BeamStream

            if self.pairs and PAIR_END not in settings.stop:  # the beams end at the reply's newline
                settings = replace(settings, stop=[*settings.stop, PAIR_END])
            stream = BeamStream(self, ids, info, settings, stop_event)
        else:
            stream = Stream(self, ids, info, settings, stop_event)
        stream.end = PAIR_END if self.pairs else None
        stream.prompt = prompt
        return stream

    def complete(self, prompt: str, settings: SamplingSettings | None = None, unknown: str = "unk") -> str:
        return "".join(t.text for t in self.stream(prompt, settings, unknown))


def trained_on_pairs(ck) -> bool:
    """Whether a saved model is a decoder-only model trained on a pairs corpus (it reads each pair as
    ``source<TAB>target<NEWLINE>``): its checkpoint records the pairs' split and its family does not read
    pairs itself."""
    return ck.corpus.pairs_seed is not None and not ck.model.family.reads_pairs


def load_model(store, name: str, checkpoint=None, device: str = "cpu"
               ) -> tuple[LanguageModel, Vocab, Tokenizer]:
    """Rebuild a saved model with its best weights (safetensors, shapes checked against the description
    before anything is allocated; nothing is unpickled)."""
    from ..errors import StoreError

    ck = checkpoint or store.read(name)
    state = store.load_weights(name, ck)
    try:
        model = build_model(ck.model)
        model.load_weights(state)
    except (RuntimeError, KeyError, ValueError, LmError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"model '{name}' is damaged: its weights do not fit its description ({first})") from None
    return model.to(device).eval(), ck.vocab, ck.tokenizer
