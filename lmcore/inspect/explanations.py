"""What each view shows, in one place: a one-line "what you see" (at most 76 characters: it sits under
the view at 80 columns, and ``lmcore inspect`` prints it) and a longer note (Markdown: what it shows,
how to read it, the d2l chapter it comes from) that the app opens on ``f1``. Keyed by view: the
Inspect views (surprisal, neurons, attention, gradients, zipf), the training chart, the arena and the
same-text comparison. No torch, no UI: plain text."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Explanation:
    title: str
    line: str       # what you see, one line
    chapter: str    # "d2l 10.1 Long Short-Term Memory (LSTM)"
    note: str       # Markdown paragraphs

    def markdown(self) -> str:
        """The whole note as the app's help shows it: title, the line, the note, the chapter."""
        return (f"# {self.title}\n\n*{self.line}*\n\n{self.note.strip()}\n\n"
                f"**From the book:** {self.chapter} (d2l.ai).\n")


_SURPRISAL = """\
Every token of the text is coloured by its **rank**: where it stood among all the tokens the model
could have predicted there, most likely first (as GLTR shows it). Four bands, each with its colour in
the line above the text (the colours follow the theme; `lmcore inspect surprisal` prints green, yellow,
red, magenta):

- **top 1**: the model's first choice;
- **top 10**: ranks 2 to 10; **top 100**: ranks 11 to 100; **rest**: beyond 100.

A text the model knows well is mostly top 1; a surprising word, a name, a typo falls to the last bands.
The line above gives the text's **perplexity** (e to the average loss per token: the number of equally
likely choices the model hesitated between, on average) and the **bits per character**, which compares
models with different tokens (characters, words, subwords). Move over a token (shift+Tab, then ←/→) to
see its probability, its rank and the five tokens the model preferred."""

_NEURONS = """\
The text is coloured by the value of **one unit** of a recurrent model at every token: red above the
centre, blue below. Pick the layer, the value and the unit above the text.

The values of an LSTM are **c h i f o**:

- **c** the memory cell, which carries information along the text; **h** the hidden state it shows to
  the next layer (a GRU and a plain RNN have **h** only);
- **i** the input gate (how much of the new candidate is written into the cell), **f** the forget gate
  (how much of the old cell is kept), **o** the output gate (how much of the cell is shown in h);
- a GRU has **r** (reset: how much of the past its candidate reads) and **z** (update: keep the old
  state or take the new one).

Gates are between 0 and 1 and coloured around 0.5. A **saturated** gate sits near 0 or 1: it works as a
switch, fully open or shut. A forget gate near 1 keeps the cell unchanged for many steps: that is how
an LSTM remembers across a long text, and why its gradients do not vanish. A unit whose colour follows
a property of the text (inside quotes, position in the line) is listed above with its correlation r."""

_ATTENTION = """\
A transformer's attention for one **layer** and **head**: each row is a **query** (the token that looks,
two per line as half blocks), each column a **key** (the token looked at); the darker the cell, the more
weight. Each row sums to 1. The line above says what the head mostly looks at: the previous token, the
first token, the start of the line, the same token earlier.

Different heads learn different patterns: that is why a transformer has several. In a language model a
token only sees the tokens before it, so the upper right half is empty. For an encoder-decoder the map
is the **alignment**: rows are the reply's tokens, columns the source's, and a good translation model
draws a near diagonal."""

_GRADIENTS = """\
How much the loss at the last of 100 steps depends on the hidden state **k steps back**: the gradient
norm |d loss_T / d h_(T-k)| (log scale), for fresh RNN, GRU and LSTMs and this model if it is recurrent.

- x axis: **steps back** through time, k = 0 is the last step;
- y axis: the **gradient norm**, one tick per power of ten.

Backpropagation through time multiplies by the recurrent weights once per step. In a plain RNN that
product shrinks (or grows) geometrically: after 50 steps the gradient is tiny, so the model cannot learn
what happened that far back (**vanishing**), or so large that training blows up (**exploding**, what
gradient clipping prevents). The summary's ratio, for example **3.5e+08x**, is how many times more
gradient the LSTM with forget bias 1 keeps than the RNN: eight orders of magnitude. The LSTM's cell adds
instead of multiplying, with a forget gate near 1, so its gradient survives."""

_ZIPF = """\
**Zipf's law** of the corpus: each n-gram's **frequency** against its **rank** (most frequent = rank 1),
both on log axes, for unigrams, bigrams and trigrams.

A straight line on log-log axes means frequency falls as a power of the rank: a few tokens ("the",
"of") make up much of the text and most tokens are rare. The slopes say how fast. The longer the
n-gram, the flatter the line and the more n-grams are seen only once: that is why counting n-grams
(an n-gram model) runs out of data, and why a neural model that shares what it learns across similar
contexts helps. The line below: the share of the text the 10 and 100 most frequent cover."""

_TRAINING = """\
The **perplexity** on training batches (train) and on held-out validation text (val) as training goes,
on a log scale, against the **step** (one optimizer update) or the **training time in minutes** (t
switches). The diamond marks the best validation point.

The horizontal lines are baselines on the same text: **unigram** (a model that only knows how often
each token occurs) and an n-gram model when the store has one. A model below them has learned
something about order. Train below val and val rising: it **overfits** (memorises the training text).
Perplexity is e to the loss: 1 is perfect, the vocabulary size is a uniform guess."""

_ARENA = """\
Several models continue the **same prompt** with the same sampling settings and seed, one column each.
Each column's line gives the model's perplexity on the prompt itself (lower: it found the prompt less
surprising) and its **budget**: training time, tokens seen, parameters.

Compare models at **equal budgets**: a model trained three times longer is not better because of its
architecture. When the budgets differ by more than 2x, a warning says so above the columns."""

_SAME_TEXT = """\
One text scored by each model: loss per token, perplexity per token and **bits per character** (the
measure that compares models with different tokens). The text is coloured by which of the first two
models found each token more likely (by more than 0.5 nats); move over a token to see every model's
probability of it.

As in the arena, compare at **equal budgets** (time, tokens seen): the warning above says when they
differ by more than 2x."""

EXPLANATIONS: dict[str, Explanation] = {
    "surprisal": Explanation(
        "Surprisal", "Each token coloured by its rank in the model's guesses: top 1, 10, 100, rest",
        "d2l 9.3 Language Models (perplexity)", _SURPRISAL),
    "neurons": Explanation(
        "Neurons", "One unit over the text; c h i f o = cell, hidden, input, forget, output gate",
        "d2l 10.1 Long Short-Term Memory (LSTM) and 10.2 Gated Recurrent Units (GRU)", _NEURONS),
    "attention": Explanation(
        "Attention", "Rows: the token that looks (query); columns: keys it looks at; dark = more",
        "d2l 11.6 Self-Attention and 11.7 The Transformer Architecture", _ATTENTION),
    "gradients": Explanation(
        "Gradients", "Gradient norm (log) vs steps back in time: how far back the loss reaches",
        "d2l 9.7 Backpropagation Through Time and 10.1 Long Short-Term Memory (LSTM)", _GRADIENTS),
    "zipf": Explanation(
        "Corpus: Zipf's law", "Frequency vs rank of words or characters, log-log: Zipf's law is a line",
        "d2l 9.2 Converting Raw Text into Sequence Data (Zipf's law) and 9.3 Language Models", _ZIPF),
    "training": Explanation(
        "Training chart", "Perplexity (log scale) by step or minutes; lower is better; lines: baselines",
        "d2l 9.3 Language Models (perplexity) and 9.5 Recurrent Neural Network Implementation from Scratch",
        _TRAINING),
    "arena": Explanation(
        "Arena", "One prompt, every model, same settings and seed: compare at equal budgets",
        "d2l 9.3 Language Models and 9.5 Recurrent Neural Network Implementation from Scratch (decoding)",
        _ARENA),
    "same_text": Explanation(
        "Same text", "One text scored by each model: bits per character compares any tokens",
        "d2l 9.3 Language Models (perplexity)", _SAME_TEXT),
}


def explain(view: str) -> Explanation:
    """The explanation of ``view`` (a key of ``EXPLANATIONS``); ConfigError for an unknown view."""
    try:
        return EXPLANATIONS[view]
    except KeyError:
        raise ConfigError(f"no explanation for view {view!r}: one of {', '.join(EXPLANATIONS)}") from None
