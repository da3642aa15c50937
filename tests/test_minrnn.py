"""minGRU and minLSTM: the parallel scan (training) equals the step-by-step recurrence (generation)."""
import numpy as np
import pytest
import torch

import lmcore
from lmcore.generation.decoders import decoder_for
from lmcore.models.minrnn.decoder import MinRNNDecoder
from lmcore.models import build_model, preset_config
from lmcore.models.minrnn.model import MinRNN, g

V = 23


@pytest.mark.parametrize("mode", ["mingru", "minlstm"])
def test_the_parallel_scan_equals_the_recurrence(mode):
    torch.manual_seed(0)
    cell = MinRNN(mode, 12, 16).double()
    x = torch.randn(3, 200, 12, dtype=torch.double) * 3  # large inputs: saturated gates, long products
    h0 = g(torch.randn(3, 16, dtype=torch.double))
    y, last = cell(x, h0)
    h, ys = h0, []
    for t in range(x.shape[1]):
        out, h = cell.step(x[:, t], h)
        ys.append(out)
    torch.testing.assert_close(torch.stack(ys, 1), y, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(h, last, rtol=1e-9, atol=1e-9)
    # by hand, the paper's recurrence: minGRU h = (1 - z) h + z g(h~); minLSTM with normalised f, i
    p = cell.proj(x[:, 0])
    if mode == "mingru":
        k, cand = p.chunk(2, -1)
        z = torch.sigmoid(k)
        want = (1 - z) * h0 + z * g(cand)
    else:
        f, i, cand = p.chunk(3, -1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        want = f / (f + i) * h0 + i / (f + i) * g(cand)
    torch.testing.assert_close(cell.step(x[:, 0], h0)[1], want)


@pytest.mark.parametrize("arch", ["mingru", "minlstm"])
@pytest.mark.parametrize("layers", [1, 2, 4])
def test_the_decoder_equals_the_forward_pass_token_by_token_and_state_carries(arch, layers):
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny", vocab_size=V, num_layers=layers)).eval()
    with torch.no_grad():  # LayerNorms and biases away from their initial 1 and 0: the folding is exercised
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    ids = torch.randint(0, V, (80,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.inference_mode():
        want = model(torch.tensor([ids]), model.init_state(1))[0][0].numpy()
        # two halves with the state carried (training's sequential batches) == the whole sequence
        a, s = model(torch.tensor([ids[:30]]), model.init_state(1))
        b, _ = model(torch.tensor([ids[30:]]), s)
        np.testing.assert_allclose(torch.cat([a, b], 1)[0].numpy(), want, atol=1e-5, rtol=1e-4)
    dec = decoder_for(model, "cpu")
    assert isinstance(dec, MinRNNDecoder)  # the numpy one-token path on the CPU
    got = np.stack([dec.prefill(ids[:5])] + [dec.step(t) for t in ids[5:-1]])
    np.testing.assert_allclose(got, want[4:-1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ["mingru", "minlstm"])
def test_decoder_clones_and_fresh_streams_go_on_independently_in_and_out_of_inference_mode(arch):
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny", vocab_size=V, num_layers=3)).eval()
    ids = torch.randint(0, V, (40,), generator=torch.Generator().manual_seed(2)).tolist()
    with torch.inference_mode():
        want = model(torch.tensor([ids]), model.init_state(1))[0][0].numpy()
        dec = decoder_for(model, "cpu")  # laid out inside inference mode, stepped outside it
    first = dec.prefill(ids[:10])
    twin = dec.clone()  # a beam: same state, then its own way
    other = dec.fresh()  # another stream sharing the weights
    other.prefill(ids[:3])
    kept = [dec.step(t) for t in ids[10:20]]
    detour = [twin.step(t) for t in reversed(ids[10:20])]
    side = [other.step(t) for t in ids[3:20]]
    np.testing.assert_allclose(np.stack([first] + kept), want[9:20], atol=1e-5, rtol=1e-4)  # not overwritten
    np.testing.assert_allclose(np.stack(side), want[3:20], atol=1e-5, rtol=1e-4)
    assert not np.allclose(detour[-1], kept[-1])
    with torch.inference_mode():
        rest = [twin.step(t) for t in ids[10:20]]  # the twin's state went its own way: not the original's
    assert not np.allclose(rest[-1], want[19])
    assert np.stack(kept).dtype == np.float32


@pytest.mark.parametrize("arch", ["mingru", "minlstm"])
def test_min_rnns_train_save_and_generate(arch, home, prose):
    res = lmcore.train("m", arch=arch, preset="tiny", corpus=str(prose), steps=30, home=home)
    ck = lmcore.Store(home).read("m")
    assert ck.model.arch == arch and ck.best_val_loss < np.log(len(ck.vocab))  # learned something
    gen = lmcore.Generator.from_store(lmcore.Store(home), "m")
    text = gen.complete("The ", lmcore.SamplingSettings(max_tokens=40, seed=1))
    assert len(text) == 40 and res is not None
    long = torch.randint(0, len(ck.vocab), (1, 2000))  # a long scan stays finite, gradients too
    model = gen.model.train()
    logits, _ = model(long)
    logits.logsumexp(-1).mean().backward()
    assert torch.isfinite(logits).all() and all(torch.isfinite(p.grad).all() for p in model.parameters())
