"""Held-out loss, the unigram floor, and the sample text shown at each evaluation."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models import LanguageModel
from ..generation.sampling_settings import SAMPLE_TEMPERATURE, SamplingSettings
from ..data.text import Tokenizer
from ..data.vocab import Vocab

EVAL_CAP = 1_000_000  # validation tokens read at each evaluation unless --eval-tokens says otherwise


@torch.no_grad()
def evaluate(model: LanguageModel, ids: torch.Tensor, seq_len: int, batch_size: int = 16,
             autocast=contextlib.nullcontext, max_tokens: int = 0) -> float:
    """Mean cross-entropy (nats per token) on held-out ids. Models that carry a state read the text as a
    few contiguous streams, carrying it; the others read windows of their context, each scored by the
    model's ``eval_loss`` (the next-token loss, or its own: BERT's masked tokens)."""
    was_training = model.training
    model.eval()
    ids = ids[: max_tokens + 1] if max_tokens else ids
    total, count = 0.0, 0
    try:
        window = model.context_window
        if window is not None:
            t = min(window, len(ids) - 1)
            n = (len(ids) - 1) // t if t > 0 else 0
            xs, ys = ids[: n * t].view(n, t).long(), ids[1: n * t + 1].view(n, t).long()
            for i in range(0, n, batch_size):
                with autocast():
                    loss, n_predicted = model.eval_loss(xs[i: i + batch_size], ys[i: i + batch_size])
                total += loss
                count += n_predicted
        else:
            streams = max(1, min(batch_size, (len(ids) - 1) // (4 * seq_len)))
            length = (len(ids) - 1) // streams
            xs = ids[: streams * length].view(streams, length).long()
            ys = ids[1: streams * length + 1].view(streams, length).long()
            state = model.init_state(streams, ids.device)
            for i in range(0, length, seq_len):
                with autocast():
                    logits, state = model(xs[:, i: i + seq_len], state)
                total += F.cross_entropy(logits.float().flatten(0, 1), ys[:, i: i + seq_len].flatten(), reduction="sum").item()
                count += ys[:, i: i + seq_len].numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("the validation set is too small to evaluate: use a larger corpus")
    return total / count


def fill_point(model: LanguageModel, val_ids: torch.Tensor, on: bool) -> tuple[float | None, float | None]:
    """(top-1, top-5) fill accuracy on the validation text's fixed blanks (lmcore.generation.fill_accuracy),
    when ``on`` (TrainConfig.fill_eval) and the model can fill; (None, None) otherwise or when the text is
    too short for a blank."""
    if not on or model.family.cannot_fill(model.config):
        return None, None
    from ..generation.fill_accuracy import fill_accuracy

    acc = fill_accuracy(model, val_ids)
    return (acc.top1, acc.top5) if acc else (None, None)


def unigram_loss(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy of the add-one unigram distribution: the floor any model must beat."""
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for chunk in train_ids.cpu().split(1 << 22):  # chunked: no int64 copy of a huge corpus
        counts += torch.bincount(chunk.long(), minlength=vocab_size)
    logp = torch.log(counts / counts.sum())
    return float(-logp[val_ids.long().cpu()].mean())


def sample_text(model: LanguageModel, vocab: Vocab, tok: Tokenizer, val_ids: torch.Tensor, n: int,
                seed: int = 0) -> tuple[str, str]:
    """The first tokens of the validation text continued by the model: sampled at the default temperature
    (seeded), and greedily. A greedy continuation of a young model loops ("the same the same"); the
    sampled one shows what generation will give."""
    from ..generation.generator import Generator

    if not model.family.can_generate(model.config) or n <= 0:
        return "", ""
    was_training = model.training
    try:
        prompt = tok.join(vocab.decode(val_ids[:16].tolist()))
        gen = Generator(model, vocab, tok, device=next(model.parameters()).device)
        sampled = gen.complete(prompt, SamplingSettings(temperature=SAMPLE_TEMPERATURE, max_tokens=n, seed=seed))
        greedy = gen.complete(prompt, SamplingSettings(temperature=0.0, max_tokens=n))
        return prompt + sampled, prompt + greedy
    finally:
        model.train(was_training)
