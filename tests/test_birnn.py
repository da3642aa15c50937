"""The birnn family: a forward and a backward RNN trained as two language models, a blank predicted from
both sides of it, and a validation loss that is an honest next-token loss."""
import json
import random

import pytest
import torch

import lmcore
from lmcore import Store, load_model
from lmcore.cli.main import main
from lmcore.models import build_model, family, preset_config


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Letters in pairs ("ccaahh..."): the second of a pair is read from the left, the first only from
    the right. An honest forward loss is at least half of log 8 nats; a model that reads ahead gets ~0."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("pairs") / "pairs.txt"
    path.write_text("".join(rng.choice("abcdefgh") * 2 for _ in range(6000)), "utf-8")
    return path


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    done = {}
    for name, arch, extra in (("bi", "birnn", {}), ("cheat", "lstm", {"bidirectional": True})):
        done[name] = lmcore.train(name, arch=arch, preset="tiny", corpus=str(pairs), steps=150, eval_every=150,
                                  lr=1e-2, model_overrides=extra, home=home)
    return home, done


def test_a_birnn_trains_saves_lists_and_loads(trained, capsys):
    home, done = trained
    assert done["bi"].saved and done["bi"].steps_trained == 150
    assert main(["--home", str(home), "models", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    row = next(r for r in listed if r.get("name") == "bi")
    assert "birnn" in json.dumps(row)
    model, vocab, tok = load_model(Store(home), "bi")
    assert model.config.arch == "birnn" and model.config.cell == "lstm"  # the default cell
    assert not model.family.can_generate(model.config) and model.family.cannot_fill(model.config) is None


def test_its_validation_loss_is_honest_where_a_bidirectional_lstm_cheats(trained):
    """On the pairs the first letter can only be read from the right: the birnn's validation loss stays
    near the honest floor (log 8 / 2 = 1.04 nats) while the leaking bidirectional LSTM's falls far below."""
    _, done = trained
    assert done["bi"].best_val_loss > 0.9
    assert done["cheat"].best_val_loss < 0.5


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_blank_prediction_never_reads_the_blank(cell):
    """Changing the token at t never changes the blank prediction at t, and the next-token logits before t
    never change either."""
    torch.manual_seed(0)
    model = build_model(preset_config("birnn", "tiny", vocab_size=13, cell=cell, num_layers=2)).eval()
    ids = torch.randint(0, 13, (2, 12))
    for t in (0, 5, 11):
        other = ids.clone()
        other[:, t] = (other[:, t] + 1 + torch.arange(2)) % 13
        with torch.no_grad():
            a, b = model.blank_logits(ids), model.blank_logits(other)
            fa, fb = model(ids)[0], model(other)[0]
        torch.testing.assert_close(a[:, t], b[:, t])
        torch.testing.assert_close(fa[:, :t], fb[:, :t])
        assert not torch.allclose(a, b)  # the other positions do read it


def _reading_log_probs(rnn, head, embedding, seq: list[int], start: int) -> float:
    """log P(seq[start:] | seq[:start]) under one direction (its network from a fresh state, its head)."""
    out, _ = rnn(embedding(torch.tensor([seq[:-1]])))
    logp = torch.log_softmax(head(out[0]).float(), -1)
    return float(sum(logp[t - 1, seq[t]] for t in range(start, len(seq))))


def test_a_blank_is_the_product_of_both_readings_and_a_quarter_of_the_head():
    """At a blank, the candidates' log-probabilities are, renormalised: the forward network's log P(w | left)
    + log P(right | left, w), the backward network's mirror of it, and HEAD_WEIGHT times the blank head's
    (each normalised over the candidates), worked out here by reading every candidate text whole."""
    from lmcore.models.birnn.model import HEAD_WEIGHT, RESCORED

    torch.manual_seed(0)
    v = 11
    assert v <= RESCORED  # every token is a candidate
    model = build_model(preset_config("birnn", "tiny", vocab_size=v, num_layers=2)).eval()
    ids = torch.randint(0, v, (1, 9))
    at = 4
    blanks = torch.zeros_like(ids, dtype=torch.bool)
    blanks[0, at] = True
    with torch.no_grad():
        got = torch.log_softmax(model.blank_logits(ids, blanks)[0, at].float(), -1)
        head = torch.log_softmax(model.blank_logits(ids)[0, at].float(), -1)
        left, right = ids[0, :at].tolist(), ids[0, at + 1:].tolist()
        fwd = torch.tensor([_reading_log_probs(model.ltr, model.next_head, model.embedding, left + [w] + right, at)
                            for w in range(v)])
        bwd = torch.tensor([_reading_log_probs(model.rtl, model.previous_head, model.embedding,
                                               (left + [w] + right)[::-1], len(right)) for w in range(v)])
    want = torch.log_softmax(HEAD_WEIGHT * head + torch.log_softmax(fwd, -1) + torch.log_softmax(bwd, -1), -1)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert HEAD_WEIGHT < 1  # the head reads one step less than the readings: its opinion counts less


def test_its_training_loss_is_the_two_readings_and_the_blank_head_at_every_few_positions():
    """The training loss: the mean of the next-token loss, the previous-token loss (each at every position)
    and the blank head's loss — for a vocabulary whose blank head costs more than the two networks, at
    every BLANK_EVERY-th position from a first drawn at random — worked out here from the model's own
    networks and heads; every first position is drawn. A small vocabulary's head learns everywhere."""
    import torch.nn.functional as F

    from lmcore.models.birnn.model import BLANK_EVERY

    assert build_model(preset_config("birnn", "small", vocab_size=65)).blank_every == 1  # characters
    assert build_model(preset_config("birnn", "small", vocab_size=5000)).blank_every == BLANK_EVERY  # words
    torch.manual_seed(0)
    v = 1000
    model = build_model(preset_config("birnn", "tiny", vocab_size=v, num_layers=2)).eval()  # no dropout
    assert model.blank_every == BLANK_EVERY
    seq = torch.randint(0, v, (3, 17))
    x, y = seq[:, :-1], seq[:, 1:]
    with torch.no_grad():
        e = model.embedding(seq)
        hf = model.ltr(e[:, :-1])[0]                                 # after s_0 .. s_t
        hb = model.rtl(e[:, 1:].flip(1))[0].flip(1)                  # after s_T .. s_(t+1)
        left = torch.cat([torch.zeros_like(hf[:, :1]), hf], 1)       # after s_(t-1)
        right = torch.cat([hb, torch.zeros_like(hb[:, :1])], 1)      # after s_(t+1)
        readings = (F.cross_entropy(model.next_head(hf).flatten(0, 1), y.flatten())
                    + F.cross_entropy(model.previous_head(hb).flatten(0, 1), x.flatten()))
        blank = model.blank_head(torch.cat([left, right], -1))
        want = [float((readings + F.cross_entropy(blank[:, f::BLANK_EVERY].flatten(0, 1),
                                                  seq[:, f::BLANK_EVERY].flatten())) / 3)
                for f in range(BLANK_EVERY)]
        drawn = set()
        for _ in range(40):
            loss = float(model.train_loss(x, y)[0])
            drawn.add(min(range(BLANK_EVERY), key=lambda f: abs(want[f] - loss)))
            assert min(abs(w - loss) for w in want) < 1e-5
    assert drawn == set(range(BLANK_EVERY))
    assert BLANK_EVERY > 1 and len(set(round(w, 6) for w in want)) == BLANK_EVERY  # the firsts differ


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_its_units_are_traced_in_both_directions(cell):
    """trace: the forward layers then the backward ones, named; a forward unit at t reads nothing after
    t, a backward unit nothing before t; the last forward layer's h is the network's own output."""
    torch.manual_seed(0)
    model = build_model(preset_config("birnn", "tiny", vocab_size=13, cell=cell, num_layers=2)).eval()
    assert model.unit_layers == ("forward 0", "forward 1", "backward 0", "backward 1")
    ids = torch.randint(0, 13, (12,))
    layers = model.trace(ids)
    assert len(layers) == 4 and all(tuple(layer) == model.unit_values for layer in layers)
    assert all(v.shape == (12, model.config.hidden) for layer in layers for v in layer.values())
    other = ids.clone()
    other[5] = (other[5] + 1) % 13
    changed = model.trace(other)
    for fwd in (0, 1):
        torch.testing.assert_close(layers[fwd]["h"][:5], changed[fwd]["h"][:5])
        torch.testing.assert_close(layers[2 + fwd]["h"][6:], changed[2 + fwd]["h"][6:])
        assert not torch.allclose(layers[fwd]["h"][5:], changed[fwd]["h"][5:])
        assert not torch.allclose(layers[2 + fwd]["h"][:6], changed[2 + fwd]["h"][:6])
    with torch.no_grad():
        own = model.ltr(model.embedding(ids[None]))[0][0]
    torch.testing.assert_close(layers[1]["h"], own, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("overrides", [{"cell": "rnn"}, {"cell": "gru", "num_layers": 3}, {"embed": 0}])
def test_shapes_from_the_config_are_the_built_models(overrides):
    config = preset_config("birnn", "tiny", vocab_size=11, **overrides)
    with torch.device("meta"):
        built = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    assert family("birnn").shapes(config) == built


def test_it_says_why_it_cannot_generate(trained, capsys):
    home, _ = trained
    assert main(["--home", str(home), "generate", "bi", "--prompt", "aa"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fills blanks" in err[0] and "right side" in err[0]
