"""Data: corpus.py (the corpora), text.py (preprocessing, tokenizers), bpe.py, vocab.py, token_cache.py
(a corpus tokenized once), batching.py (split, BatchStream), stats.py (n-gram counts)."""
