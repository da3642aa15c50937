"""Byte-level BPE (``--tokens bpe``): subword tokens learnt from the training split.

The tokenizer is trained with the Hugging Face ``tokenizers`` library (a BPE model over the 256-symbol
byte-level alphabet of GPT-2, so every byte of any text is covered and nothing is ever out of the
alphabet) and kept as that library's JSON, in canonical form (keys sorted, no spaces): the same text
gives the same string, and a checkpoint holds it as plain JSON. A token is a string of byte-level
symbols ("Ġthe" is " the"); its text is the bytes they stand for, decoded as UTF-8. A token may hold
part of a character (an emoji is four bytes): :class:`PieceDecoder` gives the text of a stream of
tokens one token at a time, a character appearing with the token that completes it.

Nothing here knows the rest of lmplay but :class:`~lmcore.errors.ConfigError`; ``text.Tokenizer``
dispatches to it for ``level="bpe"``."""
from __future__ import annotations

import codecs
import functools
import json
import re
from typing import Iterable, Iterator

from ..errors import ConfigError
from ..store.files import BadFile, parse_json

# 256 bytes and 768 merges. On the corpora lmplay is for (100K to 5M characters) a merge learnt from
# the training split still occurs dozens to thousands of times, so its embedding is trained; a token is
# two to three characters of English, so a model sees that much more text per step (and per context)
# than with characters, while the output layer stays small enough for a CPU (a word vocabulary is
# 10-30K, most of it words seen once or twice).
DEFAULT_VOCAB_SIZE = 1024
MIN_VOCAB_SIZE = 256          # the byte alphabet alone: no merges
MAX_VOCAB_SIZE = 1 << 17      # 131,072: more than any corpus lmplay trains on can fill
MIN_FREQUENCY = 2             # a pair seen once is not merged
BLOCK = 1 << 16               # characters encoded at a time (encode_batch over blocks of a long text)
_CUT = re.compile(r"(?<=\S\n)(?=\S)")  # a cut here leaves the byte-level pre-tokenization unchanged


def _byte_symbols() -> dict[int, str]:
    """GPT-2's byte -> symbol table: printable Latin-1 bytes stand for themselves, the others are
    shifted to U+0100 onward (a space is "Ġ", a line break "Ċ")."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


BYTE_SYMBOLS = _byte_symbols()
_SYMBOL_BYTE = {s: b for b, s in BYTE_SYMBOLS.items()}
_TO_LATIN1 = {ord(s): b for s, b in _SYMBOL_BYTE.items()}  # str.translate: symbol -> the byte as a code point
_NOT_SYMBOL = re.compile("[^" + "".join(re.escape(s) for s in _SYMBOL_BYTE) + "]")


def canonical(obj) -> str:
    """The one string of a JSON value: keys sorted, no spaces, characters as they are."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _blocks(text: str, size: int = BLOCK) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, cut only after a line break between two
    non-space characters: every piece pre-tokenizes as it would inside the whole text."""
    start, n = 0, len(text)
    while start < n:
        m = _CUT.search(text, start + size) if n - start > size else None
        end = m.start() if m else n
        yield text[start:end]
        start = end


def _new_tokenizer():
    from tokenizers import Tokenizer as HfTokenizer, decoders, models, pre_tokenizers

    hf = HfTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf


def train(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> str:
    """A byte-level BPE of at most ``vocab_size`` tokens trained on ``texts`` (pieces of one text), as
    canonical JSON. Deterministic: merges are chosen by count, ties by the pair's symbols."""
    from tokenizers import pre_tokenizers, trainers

    check_vocab_size(vocab_size)
    hf = _new_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=MIN_FREQUENCY, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    hf.train_from_iterator((block for text in texts for block in _blocks(text)), trainer=trainer)
    return canonical(json.loads(hf.to_str()))


def check_vocab_size(vocab_size) -> int:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) \
            or not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise ConfigError(f"the BPE vocabulary size must be a whole number from {MIN_VOCAB_SIZE} "
                          f"(the bytes alone) to {MAX_VOCAB_SIZE:,} (got {str(vocab_size)[:20]})")
    return vocab_size


@functools.lru_cache(maxsize=16)
def load(bpe_json: str):
    """The ``tokenizers`` object of a BPE's JSON (cached), after checking that it is a byte-level BPE
    with nothing that would change the text (a normaliser, added tokens): ConfigError otherwise."""
    from tokenizers import Tokenizer as HfTokenizer

    try:
        d = parse_json(bpe_json)
    except BadFile as exc:
        raise ConfigError(f"the BPE tokenizer {exc}") from None
    model = d.get("model") if isinstance(d, dict) else None
    pre = d.get("pre_tokenizer") if isinstance(d, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise ConfigError("the BPE tokenizer holds no BPE model")
    if not isinstance(pre, dict) or pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") \
            or pre.get("use_regex") is False:
        raise ConfigError("the BPE tokenizer is not byte-level")
    if d.get("normalizer") is not None or d.get("added_tokens"):
        raise ConfigError("the BPE tokenizer changes the text before splitting it (normalizer or added tokens)")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not MIN_VOCAB_SIZE <= len(vocab) <= MAX_VOCAB_SIZE:
        raise ConfigError(f"the BPE tokenizer must hold {MIN_VOCAB_SIZE} to {MAX_VOCAB_SIZE:,} tokens")
    try:
        return HfTokenizer.from_str(bpe_json)
    except Exception as exc:  # the library raises a bare Exception for any JSON it cannot read
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"the tokenizers library cannot read the BPE tokenizer ({reason})") from None


def split(bpe_json: str, text: str) -> list[str]:
    """The BPE tokens of ``text`` (byte-level symbol strings). A long text is encoded in blocks, in
    parallel, with the same tokens as in one piece."""
    hf = load(bpe_json)
    if len(text) <= BLOCK:
        return hf.encode(text, add_special_tokens=False).tokens if text else []
    out: list[str] = []
    for enc in hf.encode_batch(list(_blocks(text)), add_special_tokens=False):
        out.extend(enc.tokens)
    return out


def to_bytes(tokens: Iterable[str]) -> bytes:
    """The bytes tokens stand for. A symbol outside the byte alphabet (``<unk>``'s letters are in it)
    stands for its own UTF-8."""
    tokens = list(tokens)
    s = "".join(tokens)
    if _NOT_SYMBOL.search(s) is None:
        return s.translate(_TO_LATIN1).encode("latin-1")
    get = _SYMBOL_BYTE.get
    out = bytearray()
    for tok in tokens:
        for ch in tok:
            b = get(ch)
            if b is None:
                out += ch.encode("utf-8", "surrogatepass")
            else:
                out.append(b)
    return bytes(out)


def join(tokens: Iterable[str]) -> str:
    """The text of ``tokens``: exactly the text they were split from. Bytes that are not UTF-8 (tokens
    a model put in an impossible order) become U+FFFD."""
    return to_bytes(tokens).decode("utf-8", "replace")


def display(token: str) -> str:
    """One token's text on its own, for lists of alternatives: a partial character shows as ``\\xNN``."""
    return to_bytes([token]).decode("utf-8", "backslashreplace")


class PieceDecoder:
    """The text each token of a stream adds: a token ending inside a character holds those bytes back
    until the token that completes it (which then brings the whole character). The pieces concatenate
    to :func:`join` of the tokens, but for a character left incomplete at the end (``flush`` gives it)."""

    def __init__(self):
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")

    def __call__(self, token: str) -> str:
        return self._dec.decode(to_bytes([token]))

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)

    def copy(self) -> "PieceDecoder":
        other = PieceDecoder()
        other._dec.setstate(self._dec.getstate())
        return other
