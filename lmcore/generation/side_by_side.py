"""Models side by side on one source (the arena, ``lmcore compare``): models that answer sources — an
encoder-decoder (a family that ``reads_pairs``) and a decoder-only model trained on a pairs corpus — are put
side by side with models of the same pairs corpus only, each given the same source line: the encoder-decoder
replies to it (:class:`lmcore.ReplyStream`), the decoder-only model continues ``source<TAB>`` up to the
newline (its :class:`lmcore.Stream`, as ``lmcore generate`` runs it). Plain language models continue a
prompt, as before. Deciding needs checkpoints only (no torch)."""
from __future__ import annotations


def answers_sources(ck) -> bool:
    """Whether a saved model (its checkpoint) answers a source line: an encoder-decoder, or a decoder-only
    model trained on a pairs corpus."""
    return bool(ck.model.family.reads_pairs or ck.corpus.pairs_seed is not None)


def side_by_side_problem(checkpoints: dict) -> str | None:
    """Why these models (name -> checkpoint) cannot be compared side by side, in one line, or None: a model
    that answers sources goes only beside models that answer sources of the same pairs corpus (its text,
    by sha1)."""
    pairs = {n: ck for n, ck in checkpoints.items() if answers_sources(ck)}
    if not pairs:
        return None
    text = [n for n in checkpoints if n not in pairs]
    first, ck0 = next(iter(pairs.items()))
    if text:
        return (f"model '{first}' answers sources (trained on pairs corpus '{ck0.corpus.name}') and model "
                f"'{text[0]}' continues text: compare models of the same pairs corpus")
    for name, ck in pairs.items():
        if ck.corpus.sha1 != ck0.corpus.sha1:
            return (f"models '{first}' and '{name}' were trained on different pairs corpora ('{ck0.corpus.name}', "
                    f"'{ck.corpus.name}'): compare models of the same pairs corpus")
    return None


def answer_stream(gen, source: str, settings=None, unknown: str = "unk", stop_event=None):
    """The reply of ``gen`` (a Generator of a model that answers sources) to ``source``, token by token
    (TokenOut): an encoder-decoder's ReplyStream, or the decoder-only model's Stream of ``source<TAB>``
    ending at the newline. Both say what happened to the source (``info``); ConfigError (one line) for a
    model that answers no sources, an empty source, or one over an encoder-decoder's limit."""
    from ..errors import ConfigError

    if gen.model.family.reads_pairs:
        from .reply_stream import ReplyStream

        return ReplyStream(gen, source, settings, unknown, stop_event)
    if not gen.pairs:
        raise ConfigError("this model continues text: it was not trained on a pairs corpus")
    if not source.strip():
        raise ConfigError("the source is empty: give the text the model should answer")
    return gen.stream(source, settings, unknown, stop_event)
