"""The generation decoders against the models' own forward pass, token by token."""
import numpy as np
import pytest
import torch

from lmcore.generation.decoders import ModelDecoder, decoder_for
from lmcore.models.recurrent.decoder import RecurrentDecoder
from lmcore.models.transformer.decoder import NumpyTransformerDecoder, TransformerDecoder
from lmcore.models import build_model, preset_config

V = 23


def _reference(model, ids):
    """Logits after each token of ``ids`` from one full forward pass of the model (no cache)."""
    with torch.inference_mode():
        logits, _ = model(torch.tensor([ids]), model.init_state(1))
    return logits[0].numpy()


def _decoded(decoder, ids, prompt):
    out = [decoder.prefill(ids[:prompt])]
    out += [decoder.step(t) for t in ids[prompt:-1]]
    return np.stack(out)


@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("impl", ["fused", "scratch"])
@pytest.mark.parametrize("layers, inp", [(1, "embed"), (3, "embed"), (2, "onehot")])
def test_recurrent_decoder_matches_forward(arch, impl, layers, inp):
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny", vocab_size=V, impl=impl, num_layers=layers, input=inp,
                                      hidden=48, embed=16)).eval()
    ids = torch.randint(0, V, (60,), generator=torch.Generator().manual_seed(1)).tolist()
    dec = decoder_for(model, "cpu")
    assert isinstance(dec, RecurrentDecoder)
    got = _decoded(dec, ids, 7)
    want = _reference(model, ids)[6:-1]
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


def test_recurrent_decoder_without_a_table_for_large_vocabularies(monkeypatch):
    import lmcore.models.recurrent.decoder as decode

    monkeypatch.setattr(decode, "TABLE_MAX_BYTES", 0)
    torch.manual_seed(0)
    model = build_model(preset_config("lstm", "tiny", vocab_size=V, num_layers=2)).eval()
    ids = list(range(1, 20))
    dec = decoder_for(model, "cpu")
    assert dec.table is None
    np.testing.assert_allclose(_decoded(dec, ids, 3), _reference(model, ids)[2:-1], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("pos", ["learned", "rotary"])
@pytest.mark.parametrize("cls", [TransformerDecoder, NumpyTransformerDecoder])  # the GPU's and the CPU's
def test_transformer_decoder_matches_the_model_cache_past_the_context(pos, cls):
    torch.manual_seed(0)
    model = build_model(preset_config("transformer", "tiny", vocab_size=V, context=8, pos=pos)).eval()
    ids = torch.randint(0, V, (40,), generator=torch.Generator().manual_seed(2)).tolist()
    dec = cls(model, torch.device("cpu"))
    got = _decoded(dec, ids, 5)
    ref = ModelDecoder(model, torch.device("cpu"))  # the model's own KV cache and window sliding
    want = _decoded(ref, ids, 5)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    # within the context, both equal a plain forward pass
    np.testing.assert_allclose(got[:4], _reference(model, ids[:8])[4:], atol=2e-5, rtol=1e-4)


def test_ngram_and_gpu_recurrent_use_the_model_itself():
    ngram = build_model(preset_config("ngram", "tiny", vocab_size=V))
    assert type(decoder_for(ngram, "cpu")) is ModelDecoder
    lstm = build_model(preset_config("lstm", "tiny", vocab_size=V))
    assert type(decoder_for(lstm, "meta")) is ModelDecoder
    tf = build_model(preset_config("transformer", "tiny", vocab_size=V))
    assert type(decoder_for(tf, "cpu")) is NumpyTransformerDecoder


@pytest.mark.parametrize("arch", ["lstm", "transformer", "mingru", "minlstm"])
def test_greedy_stream_is_the_same_through_the_fast_decoder_and_the_model(arch, monkeypatch):
    """End to end through Generator.stream: the numpy decoders pick the same tokens as the model itself."""
    import lmcore.generation.generator as generate
    from lmcore import SamplingSettings
    from lmcore.data.text import Tokenizer, build_vocab

    text = "the time traveller held in his hand a glittering metallic framework " * 20
    tok = Tokenizer("char", "raw")
    vocab = build_vocab(text, tok)
    torch.manual_seed(3)
    extra = {"context": 16} if arch == "transformer" else {}
    model = build_model(preset_config(arch, "tiny", vocab_size=len(vocab), **extra)).eval()
    gen = generate.Generator(model, vocab, tok)
    s = SamplingSettings(temperature=0, max_tokens=60)
    fast = [(t.token_id, round(t.prob, 5)) for t in gen.stream("the time", s)]
    monkeypatch.setattr(generate, "decoder_for", lambda m, d: ModelDecoder(m, torch.device(d)))
    slow = [(t.token_id, round(t.prob, 5)) for t in gen.stream("the time", s)]
    assert fast == slow and len(fast) == 60


def test_generator_reuses_the_decoder_layout_until_the_weights_change():
    from lmcore import SamplingSettings
    from lmcore.generation.generator import Generator
    from lmcore.data.text import Tokenizer, build_vocab

    text = "abcab cabba " * 30
    tok = Tokenizer("char", "raw")
    vocab = build_vocab(text, tok)
    torch.manual_seed(0)
    model = build_model(preset_config("lstm", "tiny", vocab_size=len(vocab))).eval()
    gen = Generator(model, vocab, tok)
    s = SamplingSettings(temperature=0, max_tokens=20)
    first = [t.token_id for t in gen.stream("ab", s)]
    second = [t.token_id for t in gen.stream("ca", s)]
    d1 = gen.decoder()
    assert d1.table is gen.decoder().table  # shared layout ...
    assert d1.h is not gen.decoder().h  # ... separate state
    both = [(x.token_id, y.token_id) for x, y in zip(gen.stream("ab", s), gen.stream("ca", s))]
    assert both == list(zip(first, second))  # two streams interleaved do not disturb each other
    with torch.no_grad():
        model.head.bias[vocab["c"]] += 50.0  # an in-place change, as an optimizer step makes
    assert gen.decoder().table is not d1.table
    assert set(t.text for t in gen.stream("ab", s)) == {"c"}


def test_a_stop_string_split_across_tokens_ends_the_stream_where_it_completes():
    from lmcore import SamplingSettings
    from lmcore.generation.generator import Generator
    from lmcore.data.text import Tokenizer, build_vocab

    tok = Tokenizer("char", "raw")
    vocab = build_vocab("the quick brown fox jumps over the lazy dog " * 10, tok)
    torch.manual_seed(1)
    gen = Generator(build_model(preset_config("gru", "tiny", vocab_size=len(vocab))).eval(), vocab, tok)
    full = "".join(t.text for t in gen.stream("the", SamplingSettings(temperature=0, max_tokens=40)))
    stop = full[7:10]
    end = full.index(stop) + len(stop)
    stream = gen.stream("the", SamplingSettings(temperature=0, max_tokens=40, stop=["never", stop]))
    out = "".join(t.text for t in stream)
    assert out == full[:end] and stream.text == out
