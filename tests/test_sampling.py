import math

import pytest
import numpy as np

from lmcore.errors import ConfigError
from lmcore.generation.sampling import SamplingSettings, apply_repetition_penalty, filter_probs, next_token_distribution, sample

# index 0 is <unk>; 1..4 are real tokens
LOGITS = np.array([5.0, math.log(0.5), math.log(0.25), math.log(0.15), math.log(0.10)])


def dist(**kw):
    return next_token_distribution(LOGITS, SamplingSettings(**kw))


def test_unk_is_never_chosen_and_temperature_one_keeps_probs():
    d = dist(temperature=1.0)
    assert d[0] == 0
    np.testing.assert_allclose(d[1:], np.array([0.5, 0.25, 0.15, 0.10]))


def test_temperature_zero_is_greedy():
    assert dist(temperature=0).tolist() == [0, 1, 0, 0, 0]
    g = np.random.default_rng(0)
    assert {sample(LOGITS, SamplingSettings(temperature=0), (), g) for _ in range(20)} == {1}


def test_temperature_sharpens_and_flattens():
    cold, hot = dist(temperature=0.5), dist(temperature=2.0)
    assert cold[1] > 0.5 > hot[1]
    assert cold[1] / cold[2] == pytest.approx(4.0)  # (0.5/0.25)^(1/0.5)


def test_top_k():
    d = dist(temperature=1.0, top_k=2)
    np.testing.assert_allclose(d, np.array([0, 2 / 3, 1 / 3, 0, 0]))


def test_top_p_keeps_smallest_nucleus():
    d = dist(temperature=1.0, top_p=0.7)  # 0.5 alone < 0.7, 0.5 + 0.25 >= 0.7
    np.testing.assert_allclose(d, np.array([0, 2 / 3, 1 / 3, 0, 0]))
    d = dist(temperature=1.0, top_p=0.5)
    np.testing.assert_allclose(d, np.array([0, 1.0, 0, 0, 0]))


@pytest.mark.parametrize("probs, top_p, kept", [
    ([0.5, 0.3, 0.2], 0.8, 2),               # 0.5 + 0.3 reaches 0.8 (float32: 0.79999995)
    ([1 / 14] * 14, 0.5, 7),                 # ties: 7 x 1/14 reaches 0.5
    ([0.1] * 10, 0.3, 3),                    # 0.1 + 0.1 + 0.1 is 0.30000001 in float64
    ([0.1] * 10, 0.31, 4),                   # short of p by more than rounding: one more
    ([0.7, 0.2, 0.1], 0.7, 1),               # the first token alone reaches p
    ([0.7, 0.2, 0.1], 0.7001, 2),
    ([0.25] * 4, 1.0, 4),
])
def test_top_p_boundaries_keep_the_smallest_set_that_reaches_p(probs, top_p, kept):
    logits = np.log(np.array([1e-30, *probs], dtype=np.float32))  # index 0: <unk>, never kept
    d = next_token_distribution(logits, SamplingSettings(temperature=1.0, top_p=top_p))
    assert d[0] == 0 and int((d[1:] > 0).sum()) == kept
    assert abs(float(d.sum()) - 1) < 1e-6


@pytest.mark.parametrize("top_p", [0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_top_p_agrees_with_an_exact_nucleus_in_float64(top_p):
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.dirichlet(np.ones(30)).astype(np.float32)
        out = filter_probs(p, top_p=top_p)
        q = np.sort(p.astype(np.float64) / p.sum(dtype=np.float64))[::-1]
        need = int(np.searchsorted(np.cumsum(q), top_p - 1e-6) + 1)  # smallest k whose mass reaches p
        assert int((out > 0).sum()) == min(need, 30)


def test_min_p_relative_to_top():
    d = dist(temperature=1.0, min_p=0.3)  # threshold 0.15: keeps 0.5, 0.25, 0.15
    np.testing.assert_allclose(d, np.array([0, 0.5, 0.25, 0.15, 0]) / 0.9)


def test_order_top_k_then_top_p_then_min_p():
    p = np.array([0.0, 0.4, 0.3, 0.2, 0.1])
    out = filter_probs(p, top_k=3, top_p=0.5, min_p=0.0)
    # top-k leaves .4 .3 .2 (renormalised .444 .333 .222); top-p 0.5 then keeps .444 and .333
    np.testing.assert_allclose(out, np.array([0, 4 / 7, 3 / 7, 0, 0]))


def test_repetition_penalty():
    logits = np.array([0.0, 2.0, -1.0, 1.0])
    out = apply_repetition_penalty(logits, [1, 2, 2], 2.0)
    assert out.tolist() == [0.0, 1.0, -2.0, 1.0]
    d = next_token_distribution(np.array([0.0, 2.0, 1.9]), SamplingSettings(temperature=0, repetition_penalty=2.0),
                                recent=[1])
    assert d.tolist() == [0, 0, 1]  # the repeated token lost its lead


def test_seeded_sampling_is_reproducible():
    s = SamplingSettings(temperature=1.0, seed=7)
    a = [sample(LOGITS, s, (), np.random.default_rng(7)) for _ in range(1)]
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    assert [sample(LOGITS, s, (), g1) for _ in range(30)] == [sample(LOGITS, s, (), g2) for _ in range(30)]
    assert a[0] in (1, 2, 3, 4)


@pytest.mark.parametrize("kw, msg", [
    ({"temperature": -0.1}, "temperature"), ({"top_p": 0}, "top-p"), ({"top_p": 1.5}, "top-p"),
    ({"top_k": -1}, "top-k"), ({"min_p": 1.0}, "min-p"), ({"repetition_penalty": 0}, "repetition"),
    ({"max_tokens": -1}, "length"),
])
def test_out_of_range_settings(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        SamplingSettings(**kw).validate()


def test_draw_and_alternatives():
    from lmcore.generation.sampling import draw, top_alternatives

    rng = np.random.default_rng(0)
    assert draw(np.zeros(4, np.float32), rng) == -1
    counts = np.bincount([draw(np.array([0, 1, 3, 0], np.float32), rng) for _ in range(4000)], minlength=4)
    assert counts[0] == counts[3] == 0 and 0.7 < counts[2] / 4000 < 0.8
    idx, p = top_alternatives(np.array([0.1, 0.4, 0.05, 0.3, 0.15], np.float32), 3)
    assert idx.tolist() == [1, 3, 4] and np.allclose(p, [0.4, 0.3, 0.15])
    idx, _ = top_alternatives(np.array([0.5, 0.5], np.float32), 5)
    assert sorted(idx.tolist()) == [0, 1]


def test_alternatives_agree_for_small_and_large_vocabularies():
    from lmcore.generation.sampling import top_alternatives

    rng = np.random.default_rng(1)
    for size in (7, 300, 5000):
        p = rng.random(size).astype(np.float32)
        idx, vals = top_alternatives(p, 5)
        assert idx.tolist() == np.argsort(-p, kind="stable")[:5].tolist() and np.array_equal(vals, p[idx])
