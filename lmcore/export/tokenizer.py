"""A model's tokenizer and vocabulary as a Hugging Face ``tokenizers`` Tokenizer (``tokenizer.json``) that
splits text into lmcore's token ids and joins ids back into lmcore's text, for exported models.

- characters: a WordLevel model over the vocabulary, every character its own piece;
- words: a WordLevel model, the pieces of lmcore's word pattern (spaces dropped, line breaks kept), and
  a decoder that puts a space between words where lmcore's ``join`` does (not before ``.,;:!?)]}'"%``,
  not after ``([{"``, none around line breaks);
- bpe: the trained byte-level BPE with its ids renumbered to the model's vocabulary. BPE tokens the
  model never saw (the merges' intermediate steps, bytes absent from the corpus) take the ids from
  ``len(vocab)`` on: lmcore reads them as ``<unk>``, and so must whatever reads the export.
``raw`` preprocessing becomes a normalizer for line ends; ``d2l`` the chapters' clean-up (letters only,
lower case, per line)."""
from __future__ import annotations

import json

from ..data.text import _NO_SPACE_AFTER, _NO_SPACE_BEFORE, _WORD_RE, Tokenizer
from ..data.vocab import UNK, Vocab


def build(tokenizer: Tokenizer, vocab: Vocab):
    """(the ``tokenizers`` Tokenizer, how many ids it has beyond the model's vocabulary)."""
    from tokenizers import Regex, Tokenizer as HfTokenizer, decoders, models, normalizers, pre_tokenizers

    line_ends = [normalizers.Replace("\r\n", "\n"), normalizers.Replace("\r", "\n")]
    extra = 0
    if tokenizer.level == "bpe":
        bpe = json.loads(tokenizer.bpe)
        ids = dict(vocab.token_to_idx)
        for token in sorted(bpe["model"]["vocab"], key=bpe["model"]["vocab"].get):
            if token not in ids:
                ids[token] = len(ids)
        extra = len(ids) - len(vocab)
        bpe["model"]["vocab"] = ids
        hf = HfTokenizer.from_str(json.dumps(bpe))
    else:
        hf = HfTokenizer(models.WordLevel(dict(vocab.token_to_idx), unk_token=UNK))
    if tokenizer.prep == "d2l":  # d2l_clean per line: letters only, lower case, lines stripped
        clean = [*line_ends, normalizers.Replace(Regex("[^A-Za-z\n]+"), " "), normalizers.Replace(Regex(" *\n *"), "\n"),
                 normalizers.Strip(), normalizers.Lowercase()]
        if tokenizer.level == "char":  # the chapters join a character model's lines with nothing between
            clean.append(normalizers.Replace("\n", ""))
        hf.normalizer = normalizers.Sequence(clean)
    else:
        hf.normalizer = normalizers.Sequence(line_ends)
    if tokenizer.level == "char":
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        hf.decoder = decoders.Fuse()
    elif tokenizer.level == "word":
        if tokenizer.prep == "d2l":
            hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        else:
            hf.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
                pre_tokenizers.Split(Regex(_WORD_RE.pattern), behavior="isolated")])
        # a space before every word but the first ("##" starts no word token), then lmcore's exceptions
        hf.decoder = decoders.Sequence([
            decoders.WordPiece(prefix="##", cleanup=False), decoders.Fuse(),
            *(decoders.Replace(" " + c, c) for c in sorted(_NO_SPACE_BEFORE)),
            *(decoders.Replace(c + " ", c) for c in sorted(_NO_SPACE_AFTER)),
            decoders.Replace(" \n", "\n"), decoders.Replace("\n ", "\n")])
    return hf, extra


def agreement(hf, tokenizer: Tokenizer, vocab: Vocab, limit: int = 2000) -> tuple[int, int]:
    """(tokens split alike, tokens lmcore splits) on a text made of the vocabulary's first ``limit``
    tokens: the exported tokenizer against lmcore's (ids past the vocabulary count as <unk>)."""
    text = tokenizer.join(vocab.idx_to_token[1:limit])
    ours = vocab.encode(tokenizer.tokenize(text))
    theirs = [i if i < len(vocab) else 0 for i in hf.encode(text, add_special_tokens=False).ids]
    same = sum(a == b for a, b in zip(ours, theirs)) if len(ours) == len(theirs) else 0
    return same, len(ours)
