import pytest
import torch

from lmcore.errors import ConfigError
from lmcore.generation.generator import Generator
from lmcore.models import ModelConfig, build_model, preset_config
from lmcore.data.text import Tokenizer
from lmcore.data.vocab import Vocab


@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (3, False), (2, True)])
def test_scratch_equals_fused(arch, layers, bidirectional):
    torch.manual_seed(1)
    cfg = preset_config(arch, "tiny", vocab_size=23, num_layers=layers, hidden=16, embed=8,
                        bidirectional=bidirectional, impl="fused")
    fused = build_model(cfg).eval()
    scratch = build_model(ModelConfig.from_dict(dict(cfg.to_dict(), impl="scratch"))).eval()
    scratch.load_state_dict(fused.state_dict())  # same parameter names and layouts
    x = torch.randint(0, 23, (3, 11))
    state = fused.init_state(3)
    if isinstance(state, tuple):
        state = tuple(torch.randn_like(s) for s in state)
    else:
        state = torch.randn_like(state)
    y1, s1 = fused(x, state)
    y2, s2 = scratch(x, state)
    torch.testing.assert_close(y2, y1, atol=1e-5, rtol=1e-5)
    s1 = s1 if isinstance(s1, tuple) else (s1,)
    s2 = s2 if isinstance(s2, tuple) else (s2,)
    for a, b in zip(s1, s2):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_onehot_input_and_forget_bias():
    cfg = preset_config("lstm", "tiny", vocab_size=10, input="onehot", forget_bias=1.0, hidden=8)
    m = build_model(cfg)
    assert m.embedding is None and m.rnn.weight_ih_l0.shape == (32, 10)
    f = m.rnn.bias_ih_l0[8:16] + m.rnn.bias_hh_l0[8:16]
    assert torch.allclose(f, torch.ones(8))
    logits, (h, c) = m(torch.randint(0, 10, (2, 5)))
    assert logits.shape == (2, 5, 10) and h.shape == (1, 2, 8)


@pytest.mark.parametrize("pos", ["learned", "rotary"])
def test_kv_cache_equals_full_recompute(pos):
    torch.manual_seed(2)
    m = build_model(preset_config("transformer", "tiny", vocab_size=31, pos=pos, context=32)).eval()
    x = torch.randint(0, 31, (2, 30))
    full, _ = m(x)
    state = m.init_state(2)
    logits, state = m(x[:, :7], state)  # prompt in one go, then one token at a time
    outs = [logits]
    for t in range(7, 30):
        step_logits, state = m.step(x[:, t], state)
        outs.append(step_logits[:, None])
        assert state.length == t + 1  # one new cache entry per token: no recomputation
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)


def test_rotary_positions_rotate_each_pair_of_channels():
    """RoFormer's rotation: channels (2j, 2j+1) at position p turn by p·10000^(-2j/D); the complex product
    (CPU, CUDA) and the path written out in reals (MPS) agree with it, at any starting position."""
    from lmcore.models.transformer.model import rotary

    torch.manual_seed(0)
    x = torch.randn(2, 3, 10, 16)
    ang = torch.arange(5, 15).float()[:, None] * 10000.0 ** (-torch.arange(0, 16, 2).float() / 16)[None, :]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    want = torch.stack((x1 * ang.cos() - x2 * ang.sin(), x1 * ang.sin() + x2 * ang.cos()), -1).flatten(-2)
    for complex_numbers in (True, False):
        torch.testing.assert_close(rotary(x, 5, complex_numbers), want, atol=1e-5, rtol=1e-5)
    # the rotation keeps lengths and depends on position: position 0 is the identity
    torch.testing.assert_close(rotary(x[:, :, :1], 0), x[:, :, :1])


def test_transformer_window_slides_past_context():
    m = build_model(preset_config("transformer", "tiny", vocab_size=11, context=8)).eval()
    state = m.init_state(1)
    for _ in range(30):
        logits, state = m.step(torch.tensor([3]), state)
        assert state.length <= 8 and logits.shape == (1, 11) and torch.isfinite(logits).all()
    # one layer: its keys depend only on token and position, so the rolled cache is exact
    r = build_model(preset_config("transformer", "tiny", vocab_size=11, context=8, pos="rotary",
                                  num_layers=1)).eval()
    x = torch.randint(0, 11, (1, 20))
    state = r.init_state(1)
    for t in range(20):
        logits, state = r.step(x[:, t], state)
    assert state.length == 8 and state.pos == 20
    # a rotary window of the last 8 tokens equals a fresh forward over those 8 (relative positions)
    torch.testing.assert_close(logits, r(x[:, -8:])[0][:, -1], atol=1e-5, rtol=1e-5)


def test_bidirectional_cannot_generate():
    cfg = preset_config("gru", "tiny", vocab_size=5, bidirectional=True)
    m = build_model(cfg)
    vocab = Vocab(list("abcd"))
    with pytest.raises(ConfigError, match="cannot generate text"):
        Generator(m, vocab, Tokenizer())


def test_ngram_counts_a_text_in_chunks_as_in_one_piece(monkeypatch):
    """A corpus larger than memory is counted CHUNK tokens at a time (from a uint16 token file): the
    counts equal one pass over the whole, n-grams across chunk edges included; a stop leaves no counts."""
    import threading

    from lmcore.errors import Cancelled
    from lmcore.models.ngram import model as ngram

    torch.manual_seed(4)
    ids = torch.randint(0, 9, (1000,), dtype=torch.uint8)
    cfg = preset_config("ngram", "tiny", vocab_size=9, order=4)
    whole = build_model(cfg)
    whole.fit(ids.long())
    monkeypatch.setattr(ngram, "CHUNK", 37)
    chunked = build_model(cfg)
    chunked.fit(ids.to(torch.int16))
    a, b = whole.state_dict(), chunked.state_dict()
    assert a.keys() == b.keys() and len(a["cols_4"]) > 100
    for k in a:
        assert torch.equal(a[k], b[k]), k
    stop = threading.Event()
    stop.set()
    stopped = build_model(cfg)
    with pytest.raises(Cancelled, match="nothing was saved"):
        stopped.fit(ids, stop)
    assert stopped.unigram.sum() == 0 and len(stopped.cols_4) == 0


def test_ngram_laplace_smoothing_matches_formula():
    from collections import Counter

    torch.manual_seed(3)
    v, n, eps = 7, 3, 0.5
    ids = torch.randint(0, v, (500,))
    m = build_model(preset_config("ngram", "tiny", vocab_size=v, order=n, epsilon=eps))
    m.fit(ids)
    seq = ids.tolist()
    counts = {k: Counter(tuple(seq[i:i + k]) for i in range(len(seq) - k + 1)) for k in range(1, n + 1)}

    def prob(w, hist):
        p = 1 / v
        p = (counts[1][(w,)] + eps * p) / (len(seq) + eps)
        for k in range(2, n + 1):
            if len(hist) < k - 1:
                continue
            ctx = tuple(hist[len(hist) - (k - 1):])
            total = sum(c for g, c in counts[k].items() if g[:-1] == ctx)
            p = (counts[k][ctx + (w,)] + eps * p) / (total + eps)
        return p

    x = torch.tensor([seq[20:30]])
    logits, state = m(x)
    probs = logits.exp()
    assert torch.allclose(probs.sum(-1), torch.ones(1, 10))
    for t in range(10):
        for w in range(v):
            assert probs[0, t, w].item() == pytest.approx(prob(w, seq[20:21 + t]), rel=1e-5)
    nxt, _ = m(torch.tensor([[seq[30]]]), state)  # the state carries the history
    assert nxt[0, 0].exp()[seq[31]].item() == pytest.approx(prob(seq[31], seq[20:31]), rel=1e-5)


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown architecture"):
        preset_config("cnn")
    with pytest.raises(ConfigError, match="multiple of the heads"):
        preset_config("transformer", "tiny", hidden=30, heads=4)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("lstm", "huge")
    cfg = preset_config("transformer", "small", vocab_size=50)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
