"""Generation: generator.py (streams), decoders.py, sampling.py, sampling_settings.py, beam.py,
scoring.py (a text's log-probabilities), token_out.py (one generated token)."""
