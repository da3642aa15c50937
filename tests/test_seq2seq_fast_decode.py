"""The seq2seq decoder's numpy step on the CPU (``fast_decoder``) against the model's own ``decode_step``,
token by token, for every cell and attention, beams' rows picked or repeated, a model read back from the
store; and greedy, sampled and beam replies through it equal those through ``decode_step``."""
import numpy as np
import pytest
import torch

import lmcore
from lmcore.generation.sampling_settings import SamplingSettings
from lmcore.generation.seq2seq_decode import beam_search, greedy_many, sampled
from lmcore.models import ModelConfig, build_model

VARIANTS = [(cell, att) for cell in ("gru", "lstm") for att in ("none", "additive", "dot")]


def tiny(cell="gru", attention="additive", layers=2, vocab=23):
    torch.manual_seed(0)
    c = ModelConfig("seq2seq", vocab, cell=cell, attention=attention, num_layers=layers, embed=8, hidden=16,
                    dropout=0.1)
    return build_model(c.validate()).eval()


def same_steps(m, src, src_len, tgt, rows=None):
    """Feed ``tgt`` (B, T) to both decoders and compare every step's logits; ``rows``: after the first step,
    keep those rows (beams) in both."""
    fast = m.fast_decoder()
    assert fast is not None
    fast.start(src, src_len)
    state = m.encode(src, src_len)
    with torch.no_grad():
        for t in range(tgt.shape[1]):
            tokens = tgt[:, t] if rows is None or t == 0 else tgt[rows, t]
            ours = fast.step(tokens.tolist())
            theirs, state = m.decode_step(tokens, state)
            assert ours.dtype == np.float32
            np.testing.assert_allclose(ours, theirs.numpy(), atol=2e-5, rtol=1e-5)
            if rows is not None and t == 0:
                fast.select(rows)
                state = m.select_state(state, torch.tensor(rows))


@pytest.mark.parametrize("cell,attention", VARIANTS)
@pytest.mark.parametrize("layers", [1, 2])
def test_the_numpy_step_equals_decode_step_token_by_token(cell, attention, layers):
    m = tiny(cell, attention, layers)
    src, src_len = torch.randint(0, 23, (3, 7)), torch.tensor([7, 2, 5])
    tgt = torch.randint(0, 23, (3, 6))
    same_steps(m, src, src_len, tgt)
    same_steps(m, src, src_len, tgt, rows=[2, 2, 0])  # beams: rows picked or repeated


def test_it_is_offered_only_for_a_float32_model_in_eval_mode_on_the_cpu():
    m = tiny()
    assert m.fast_decoder() is not None
    assert m.train().fast_decoder() is None  # dropout: the model's own step
    assert m.eval().double().fast_decoder() is None


class Plain:
    """The same model without its fast decoder: replies through ``decode_step``."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def fast_decoder(self):
        return None


@pytest.mark.parametrize("cell,attention", [("gru", "additive"), ("lstm", "dot"), ("lstm", "none")])
def test_greedy_sampled_and_beam_replies_are_those_of_decode_step(cell, attention):
    m = tiny(cell, attention)
    sources, bos, eos = [[3, 4, 5, 6], [7, 8]], 1, 2
    for ours, theirs in zip(greedy_many(m, sources, bos, eos, 9), greedy_many(Plain(m), sources, bos, eos, 9)):
        assert ours.ids == theirs.ids and ours.ended == theirs.ended
        np.testing.assert_allclose(ours.probs, theirs.probs, rtol=1e-4)
    settings = SamplingSettings(temperature=0.9, top_k=5, seed=3)
    a, b = sampled(m, sources[0], bos, eos, settings, 9), sampled(Plain(m), sources[0], bos, eos, settings, 9)
    assert a.ids == b.ids and np.allclose(a.probs, b.probs, rtol=1e-4)
    a, b = beam_search(m, sources[0], bos, eos, 3, 9), beam_search(Plain(m), sources[0], bos, eos, 3, 9)
    assert a.ids == b.ids and a.ended == b.ended and a.logprob == pytest.approx(b.logprob, rel=1e-4)


def test_a_stored_model_decodes_alike_through_both(tmp_path):
    assert lmcore.train("s", arch="seq2seq", preset="tiny", corpus="dates", steps=2, eval_every=2, batch_size=8,
                        model_overrides={"cell": "lstm", "max_len": 24}, home=tmp_path).saved
    gen = lmcore.Generator.from_store(lmcore.Store(tmp_path), "s")
    m = gen.model.eval()
    ids = gen.vocab.encode(gen.tokenizer.tokenize("3 May 1979"))
    src, src_len = torch.tensor([ids]), torch.tensor([len(ids)])
    same_steps(m, src, src_len, torch.randint(1, len(gen.vocab), (1, 8)))


def test_weights_changed_in_place_are_read_again():
    m = tiny("lstm", "additive")
    src, src_len, tgt = torch.randint(0, 23, (2, 5)), torch.tensor([5, 3]), torch.randint(0, 23, (2, 4))
    same_steps(m, src, src_len, tgt)
    with torch.no_grad():  # as an optimizer step does
        m.head.weight.add_(0.5)
        m.decoder.weight_hh_l0.mul_(1.5)
    same_steps(m, src, src_len, tgt)
    other = tiny("lstm", "additive")
    with torch.no_grad():
        other.attention.W_q.weight.normal_()
    m.load_state_dict(other.state_dict())  # as reading a checkpoint into the same model does
    same_steps(m, src, src_len, tgt)


def tiny_transformer(pos="sinusoidal", vocab=23):
    torch.manual_seed(0)
    c = ModelConfig("seq2seq-transformer", vocab, num_layers=2, heads=2, hidden=16, ffn=24, max_len=12, pos=pos,
                    dropout=0.1)
    return build_model(c.validate()).eval()


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
def test_the_transformers_numpy_step_equals_decode_step_token_by_token(pos):
    m = tiny_transformer(pos)
    with torch.no_grad():  # layer norms with gains and shifts of their own (folded into the next layer)
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    src, src_len = torch.randint(0, 23, (3, 7)), torch.tensor([7, 2, 5])
    tgt = torch.randint(0, 23, (3, 12))
    same_steps(m, src, src_len, tgt)  # up to the model's limit
    same_steps(m, src, src_len, tgt, rows=[2, 2, 0])
    same_steps(m, src[:1, :4], torch.tensor([4]), tgt[:1])  # one reply
    same_steps(m, src[:1, :4], torch.tensor([4]), tgt[:1], rows=[0, 0, 0])  # its beams
    same_steps(m, src[:1], torch.tensor([3]), tgt[:1])  # one source with padding after it
    a, b = beam_search(m, [3, 4, 5], 1, 2, 3, 9), beam_search(Plain(m), [3, 4, 5], 1, 2, 3, 9)
    assert a.ids == b.ids and a.logprob == pytest.approx(b.logprob, rel=1e-4)


@pytest.mark.parametrize("table", [True, False])
def test_one_reply_decodes_alike_with_large_scores_and_without_the_first_layers_table(monkeypatch, table):
    from lmcore.models.seq2seq_transformer import decoder

    if not table:  # as for a word vocabulary: the first layer computed per token
        monkeypatch.setattr(decoder, "FIRST_TABLE_MAX_BYTES", 0)
    m = tiny_transformer("learned")
    with torch.no_grad():  # cross-attention scores in the hundreds: exp of them unshifted would overflow
        for b in m.decoder:
            b.cross.q.weight.mul_(1000.0)
            b.cross.q.bias.add_(3.0)
        m.tgt_emb.weight.mul_(5.0)
    src, tgt = torch.randint(0, 23, (1, 6)), torch.randint(0, 23, (1, 12))
    same_steps(m, src, torch.tensor([6]), tgt)
    same_steps(m, src, torch.tensor([6]), tgt, rows=[0, 0])


def test_a_model_made_in_inference_mode_decodes_alike():
    with torch.inference_mode():  # its parameters track no version: laid out each time
        m = tiny("gru", "dot")
        src, src_len, tgt = torch.randint(0, 23, (2, 5)), torch.tensor([5, 3]), torch.randint(0, 23, (2, 4))
        same_steps(m, src, src_len, tgt)
        with torch.no_grad():
            m.head.bias.add_(1.0)
        same_steps(m, src, src_len, tgt)


def test_a_vocabulary_too_big_for_a_table_is_projected_per_token(monkeypatch):
    from lmcore.models.seq2seq import decoder

    monkeypatch.setattr(decoder, "TABLE_MAX_BYTES", 0)
    m = tiny("gru", "none")
    src, src_len, tgt = torch.randint(0, 23, (2, 5)), torch.tensor([5, 3]), torch.randint(0, 23, (2, 4))
    same_steps(m, src, src_len, tgt)
