"""Pairs corpora: text files of ``source<TAB>target`` lines (Tatoeba/Anki exports, d2l's ``fra.txt``).

Reading (:func:`read_pairs`), the fixed-shuffle split (:func:`split_pairs`: the last 10% of a seeded shuffle
is the validation split), d2l's preprocessing of the English-French pairs (:func:`d2l_nmt_preprocess`,
:func:`d2l_words`), the generated built-in tasks (:func:`dates_text`, :func:`reverse_text`) and the text a
decoder-only model reads for a pair (:func:`pair_line`: ``source<TAB>target<NEWLINE>``)."""
from __future__ import annotations

import datetime as _dt
import random
import re
from dataclasses import dataclass

from ..errors import CorpusError

SEPARATOR = "\t"      # between a pair's source and target
END = "\n"            # after a pair's target
SPLIT_SEED = 0        # the fixed shuffle's seed (recorded in checkpoints)
VAL_FRACTION = 0.1    # the last 10% of the shuffled pairs are the validation split
SNIFF_LINES = 1000    # lines looked at to tell a pairs file from plain text


@dataclass(frozen=True)
class PairsText:
    """The pairs of a text and what was left out: ``skipped`` lines without a tab, ``empty`` lines whose
    source or target is empty (blank lines are not counted)."""

    pairs: list[tuple[str, str]]
    skipped: int = 0
    empty: int = 0

    @property
    def note(self) -> str | None:
        """One line about the lines left out, or None when none were."""
        parts = []
        if self.skipped:
            parts.append(f"{self.skipped:,} line{'s' if self.skipped != 1 else ''} without a tab")
        if self.empty:
            parts.append(f"{self.empty:,} line{'s' if self.empty != 1 else ''} with an empty source or target")
        return f"skipped {' and '.join(parts)} (a pairs corpus holds source<TAB>target lines)" if parts else None


@dataclass(frozen=True)
class PairsSplit:
    """The pairs in training and validation order after the fixed shuffle, and that shuffle's seed."""

    train: list[tuple[str, str]]
    valid: list[tuple[str, str]]
    seed: int = SPLIT_SEED


def read_pairs(text: str, where: str = "the corpus") -> PairsText:
    """The ``source<TAB>target`` pairs of ``text`` (each side stripped; further columns ignored). Lines
    without a tab, and lines whose source or target is empty, are skipped and counted. CorpusError in one
    line when nothing is left: no line has a tab, or every source (or every target) is empty."""
    pairs: list[tuple[str, str]] = []
    skipped = empty = 0
    empty_src = empty_tgt = 0
    for line in text.split("\n"):  # only line feeds end a line (a \r before one is stripped with the side)
        if not line.strip():
            continue
        if SEPARATOR not in line:
            skipped += 1
            continue
        fields = line.split(SEPARATOR)
        src, tgt = fields[0].strip(), fields[1].strip()
        if not src or not tgt:
            empty += 1
            empty_src += not src
            empty_tgt += not tgt
            continue
        pairs.append((src, tgt))
    if not pairs:
        if empty and empty_src == empty:
            raise CorpusError(f"{where} has an empty source on every line: a pairs corpus holds "
                              f"source<TAB>target lines with text on both sides")
        if empty and empty_tgt == empty:
            raise CorpusError(f"{where} has an empty target on every line: a pairs corpus holds "
                              f"source<TAB>target lines with text on both sides")
        if empty:
            raise CorpusError(f"{where} has no pair with text on both sides of its tab: a pairs corpus holds "
                              f"source<TAB>target lines")
        raise CorpusError(f"{where} has no pairs (no line holds a tab): a pairs corpus holds "
                          f"source<TAB>target lines")
    return PairsText(pairs, skipped, empty)


def split_pairs(pairs: list[tuple[str, str]], seed: int = SPLIT_SEED,
                val_fraction: float = VAL_FRACTION) -> PairsSplit:
    """A fixed shuffle of ``pairs`` (``random.Random(seed)``, the same on every machine and Python), then
    the last ``val_fraction`` of them (at least one) are the validation split. Needs at least two pairs."""
    if not 0 < val_fraction < 1:
        raise CorpusError(f"the validation fraction must be in (0, 1) (got {val_fraction})")
    if len(pairs) < 2:
        raise CorpusError(f"a pairs corpus needs at least 2 pairs to hold some out for validation "
                          f"(it has {len(pairs)})")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = min(len(pairs) - 1, max(1, int(round(len(pairs) * val_fraction))))
    shuffled = [pairs[i] for i in order]
    return PairsSplit(shuffled[:-n_val], shuffled[-n_val:], seed)


def pair_line(source: str, target: str = "") -> str:
    """The text a decoder-only model reads for a pair: ``source<TAB>target<NEWLINE>``; with no target, the
    prompt it continues (``source<TAB>``)."""
    return f"{source}{SEPARATOR}{target}{END}" if target else f"{source}{SEPARATOR}"


def pair_prompt(prompt: str) -> str:
    """What a decoder-only model trained on pairs continues for a prompt: the source and a tab (a prompt
    that holds a tab already is a source and the start of its target: kept). A final line break is dropped."""
    prompt = prompt.rstrip("\r\n")
    return prompt if SEPARATOR in prompt else prompt + SEPARATOR


def pairs_lines(pairs: list[tuple[str, str]]) -> str:
    """Pairs as a decoder-only model's text: one ``source<TAB>target<NEWLINE>`` line each."""
    return "".join(pair_line(s, t) for s, t in pairs)


def looks_like_pairs(text: str) -> bool:
    """Whether a text reads as a pairs corpus: among its first non-blank lines (SNIFF_LINES), at least 90%
    (and at least two) hold text, a tab, and text."""
    good = seen = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        seen += 1
        head, tab, tail = line.partition(SEPARATOR)
        good += bool(tab and head.strip() and tail.split(SEPARATOR)[0].strip())
        if seen >= SNIFF_LINES:
            break
    return good >= 2 and good >= 0.9 * seen


# ---------------------------------------------------------------- d2l's English-French pairs

def d2l_nmt_preprocess(text: str) -> str:
    """d2l's ``MTFraEng._preprocess``: non-breaking spaces (U+202F, U+00A0) become spaces, the text is
    lower-cased, and a space is put before each of ``, . ! ?`` that does not follow a space."""
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    return re.sub(r"(?<=[^ ])([,.!?])", r" \1", text.lower())


def d2l_words(side: str) -> list[str]:
    """d2l's word tokens of one side of a preprocessed pair (``MTFraEng._tokenize`` without its
    ``<eos>``): split at spaces, empty tokens dropped."""
    return [t for t in side.split(" ") if t]


# ---------------------------------------------------------------- generated built-in tasks

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
DATES_COUNT = 10_000
DATES_FIRST = _dt.date(1900, 1, 1)
DATES_LAST = _dt.date(2099, 12, 31)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _date_fields(d: _dt.date) -> dict:
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return {"W": weekday, "w": weekday[:3], "M": month, "m": month[:3], "d": d.day, "o": _ordinal(d.day),
            "Y": d.year, "n": d.month, "R": ROMAN[d.month - 1]}


# Every format names the month in words, or puts the year first: none can be read two ways.
DATE_FORMATS = (
    "{W}, {d} {M} {Y}",          # Thursday, 3 May 1979
    "{W}, {M} {d}, {Y}",         # Thursday, May 3, 1979
    "{W} {o} {M} {Y}",           # Thursday 3rd May 1979
    "{w} {d} {m} {Y}",           # Thu 3 May 1979
    "{d} {M} {Y}",               # 3 May 1979
    "{M} {d}, {Y}",              # May 3, 1979
    "{M} {o}, {Y}",              # May 3rd, 1979
    "{o} {M} {Y}",               # 3rd May 1979
    "the {o} of {M} {Y}",        # the 3rd of May 1979
    "{d} {m} {Y}",               # 3 May 1979 (short month: 3 Sep 1979)
    "{m} {d} {Y}",               # Sep 3 1979
    "{d}-{m}-{Y}",               # 3-Sep-1979
    "{Y} {M} {d}",               # 1979 May 3
    "{Y}/{n:02d}/{d:02d}",       # 1979/05/03
    "{Y}.{n}.{d}",               # 1979.5.3
    "{d}.{R}.{Y}",               # 3.V.1979 (Roman month)
    "{M} {d} {Y}",               # May 3 1979
    "{W} {d} {M} {Y}",           # Thursday 3 May 1979
)


def format_date(d: _dt.date, fmt: str) -> str:
    """``d`` written in format ``fmt`` (one of DATE_FORMATS), with English names whatever the locale."""
    return fmt.format(**_date_fields(d))


def dates_pairs(count: int = DATES_COUNT, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` different dates between 1900 and 2099, each written in one of DATE_FORMATS chosen at
    random, paired with its ISO 8601 form (``Thursday, 3 May 1979`` -> ``1979-05-03``). Deterministic."""
    rng = random.Random(seed)
    span = (DATES_LAST - DATES_FIRST).days + 1
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    while len(out) < min(count, span):
        d = DATES_FIRST + _dt.timedelta(days=rng.randrange(span))
        source = format_date(d, rng.choice(DATE_FORMATS))
        if source not in seen:
            seen.add(source)
            out.append((source, d.isoformat()))
    return out


def dates_text() -> str:
    """The built-in ``dates`` corpus: its pairs as ``source<TAB>target`` lines."""
    return pairs_lines(dates_pairs())


REVERSE_COUNT = 10_000
REVERSE_MIN, REVERSE_MAX = 5, 60


def reverse_pairs(prose: str, count: int = REVERSE_COUNT, seed: int = 0) -> list[tuple[str, str]]:
    """Phrases of REVERSE_MIN to REVERSE_MAX characters (whole words, in order, from ``prose``), each
    paired with the same characters reversed; lengths drawn uniformly, different phrases only.
    Deterministic for a given prose."""
    words = prose.split()
    if not words:
        raise CorpusError("the reverse task needs some prose to take its phrases from")
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    tries = 0
    while len(out) < count and tries < 20 * count:
        tries += 1
        limit = rng.randint(REVERSE_MIN, REVERSE_MAX)
        i = rng.randrange(len(words))
        phrase = words[i]
        if len(phrase) > limit:
            continue
        for w in words[i + 1:]:
            if len(phrase) + 1 + len(w) > limit:
                break
            phrase += " " + w
        if len(phrase) < REVERSE_MIN or phrase in seen:
            continue
        seen.add(phrase)
        out.append((phrase, phrase[::-1]))
    return out


def reverse_text(prose: str) -> str:
    """The built-in ``reverse`` corpus: its pairs as ``source<TAB>target`` lines."""
    return pairs_lines(reverse_pairs(prose))
