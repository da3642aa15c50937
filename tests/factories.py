"""Real checkpoints and generators for tests: a small model of any architecture with a real vocabulary."""
from __future__ import annotations

import torch

from lmcore import Checkpoint, CorpusRef, EvalPoint, Generator, Tokenizer, TrainConfig, Vocab
from lmcore.models import archs, build_model, family, preset_config
from lmcore.data.text import build_vocab

TOKENS = list("abcdefgh \n")
# every language model that generates (encoder–decoders, which read pairs, answer sources instead)
ARCHS = [a for a in archs() if not family(a).reads_pairs and family(a).can_generate(preset_config(a, "tiny", vocab_size=2))]
TEXT = "the time traveller held in his hand a glittering metallic framework " * 20


def checkpoint(name: str = "m", arch: str = "lstm", step: int = 1, val_loss: float = 1.5,
               corpus: str = "timemachine", vocab: Vocab | None = None,
               **model_overrides) -> tuple[Checkpoint, dict[str, torch.Tensor]]:
    """A valid checkpoint (tiny preset) and its model's weights; ``vocab``: another vocabulary (default:
    TOKENS, then the family's special tokens)."""
    vocab = vocab or Vocab(TOKENS).with_tokens(family(arch).special_tokens)
    cfg = preset_config(arch, "tiny", vocab_size=len(vocab), **model_overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    ck = Checkpoint(name=name, model=cfg, train=TrainConfig(steps=10).resolved(arch, "tiny", model.stateful),
                    tokenizer=Tokenizer(), vocab=vocab, corpus=CorpusRef(corpus, "0" * 40, "cache", 90, 10),
                    preset="tiny", step=step, params=model.num_params(), device="cpu (2 threads)",
                    history=[EvalPoint(step=step, val_loss=val_loss, elapsed=1.0)], best_val_loss=val_loss)
    return ck, model.state_dict()


def save(store, name: str = "m", arch: str = "lstm", step: int = 1, resume: dict | None = None, **kw) -> Checkpoint:
    ck, state = checkpoint(name, arch, step, **kw)
    store.save(name, ck, state, resume)
    return ck


def generator(arch: str, text: str = TEXT, seed: int = 3, **overrides) -> Generator:
    """An untrained tiny model of ``arch`` over the characters of ``text``, seeded: a counted model (the
    n-gram) counts the text; the others' weights are scaled up so that their distributions are far from
    uniform."""
    tok = Tokenizer("char", "raw")
    vocab = build_vocab(text, tok)
    torch.manual_seed(seed)
    extra = {"context": 64} if family(arch).windowed else {}
    model = build_model(preset_config(arch, "tiny", vocab_size=len(vocab), **{**extra, **overrides})).eval()
    if not family(arch).trainable:  # counted: the n-gram
        model.fit(torch.tensor(vocab[tok.tokenize(text)]))
    else:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(4)
    return Generator(model, vocab, tok)
