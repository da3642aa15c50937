"""Bits per character for every evaluation, and the leaderboard of the models trained on one corpus."""
import json
import math

import lmcore
from lmcore import Store
from lmcore.cli.main import main


def test_every_evaluation_stores_bits_per_character(prose):
    lmcore.train("c", arch="lstm", preset="tiny", corpus=str(prose), steps=20, eval_every=10)
    lmcore.train("w", arch="lstm", preset="tiny", corpus=str(prose), tokens="word", steps=20, eval_every=10)
    char, word = Store().read("c"), Store().read("w")
    assert len(char.history) >= 2
    for h in char.history:  # one token is one character
        assert h.bits_per_char == h.val_loss / math.log(2)
    ref = word.corpus
    assert ref.val_chars > ref.val_tokens > 0  # a word is longer than one character
    for h in word.history:
        assert math.isclose(h.bits_per_char, h.val_loss / math.log(2) * ref.val_tokens / ref.val_chars)
    assert word.best_val_bpc == min(h.bits_per_char for h in word.history)


def test_the_leaderboard_ranks_one_corpus_by_bits_per_character(prose, tmp_path, capsys):
    other = tmp_path / "other.txt"
    other.write_text(prose.read_text()[: 20000])
    lmcore.train("ngram", arch="ngram", preset="tiny", corpus=str(prose))
    lmcore.train("lstm", arch="lstm", preset="tiny", corpus=str(prose), steps=20, eval_every=10)
    lmcore.train("elsewhere", arch="ngram", preset="tiny", corpus=str(other))
    (Store().root / "broken").mkdir()  # a damaged model is left out, not an error
    (Store().root / "broken" / "meta.json").write_text("{")
    corpus = Store().read("lstm").corpus.name
    assert main(["models", "--corpus", corpus, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in rows} == {"ngram", "lstm"}
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["best_val_bpc"] <= rows[1]["best_val_bpc"]
    assert all(r["params"] > 0 and r["elapsed"] >= 0 for r in rows)
    assert main(["models", "--corpus", corpus]) == 0
    out = capsys.readouterr().out
    assert "bpc" in out and out.index(rows[0]["name"]) < out.index(rows[1]["name"])
    assert main(["models", "--corpus", "nothing-here"]) == 0
    assert "no models trained on" in capsys.readouterr().out


def test_a_model_that_reads_ahead_is_ranked_after_the_honest_ones_and_said_why(prose, capsys):
    """The --bidirectional LSTM reads the token it predicts: its perplexity near 1 must not top the
    ranking (the lesson of the cheat); it is listed, marked, and the reason printed."""
    lmcore.train("honest", arch="lstm", preset="tiny", corpus=str(prose), steps=30, eval_every=30)
    lmcore.train("cheat", arch="lstm", model_overrides={"bidirectional": True}, preset="tiny", corpus=str(prose), steps=30,
                 eval_every=30)
    corpus = Store().read("honest").corpus.name
    assert Store().read("cheat").best_val_loss < Store().read("honest").best_val_loss  # it does cheat
    assert main(["models", "--corpus", corpus, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["honest", "cheat"]
    assert rows[0]["reads_ahead"] is None and "reads the token it predicts" in rows[1]["reads_ahead"]
    assert main(["models", "--corpus", corpus]) == 0
    out = capsys.readouterr().out
    assert "⚠ reads ahead" in out and "measures nothing" in out


def test_a_pairs_corpus_is_ranked_by_bleu_and_says_so(capsys):
    """On a pairs corpus the table says it ranks by BLEU and shows it (in the fill column's place)."""
    done = lmcore.train("s", arch="seq2seq", preset="tiny", corpus="dates", steps=10, eval_every=10)
    assert done.saved and done.best_val_bleu is not None
    assert main(["models", "--corpus", "dates"]) == 0
    out = capsys.readouterr().out
    assert "best first by validation BLEU" in out and " bleu " in out and " fill " not in out
    assert main(["models", "--corpus", "dates", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["name"] == "s" and row["best_val_bleu"] == done.best_val_bleu
