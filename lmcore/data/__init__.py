"""Data: corpora, text preparation and tokenizers, vocabularies, the token cache and batching."""
