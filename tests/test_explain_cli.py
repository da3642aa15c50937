"""`lmcore inspect …` and `lmcore corpora zipf` say what their output shows: the axes of the text plots
(gradient norm by steps back, frequency by rank) and the view's line with its d2l chapter; --json stays
strict JSON lines."""
import json

from lmcore.cli.main import main
from lmcore.inspect import explain


def test_gradients_label_their_axes_and_name_the_chapter(home, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--home", str(home), "inspect", "gradients", "--length", "20"]) == 0
    out = capsys.readouterr().out
    assert "gradient norm |d loss at step T / d h_(T-k)|" in out and "columns: k = steps back through time" in out
    assert explain("gradients").line in out and "d2l 9.7 Backpropagation Through Time" in out
    assert main(["--home", str(home), "inspect", "gradients", "--length", "20", "--json"]) == 0
    assert all(json.loads(line) for line in capsys.readouterr().out.splitlines())


def test_zipf_says_what_the_slope_is_against(home, prose, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--home", str(home), "corpora", "zipf", str(prose)]) == 0
    out = capsys.readouterr().out
    assert "slope: of log frequency against log rank (rank 1 = the most frequent)" in out
    assert explain("zipf").line in out and "d2l 9.2" in out


def test_surprisal_ends_with_what_the_colours_mean(home, prose, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--home", str(home), "train", "c", "--arch", "ngram", "--corpus", str(prose)]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "inspect", "surprisal", "c", "--text", "The time machine"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The time machine")
    assert out.rstrip().splitlines()[-1] == f"{explain('surprisal').line} · {explain('surprisal').chapter}"
    assert main(["--home", str(home), "inspect", "surprisal", "c", "--text", "The time", "--json"]) == 0
    assert all(json.loads(line) for line in capsys.readouterr().out.splitlines())
