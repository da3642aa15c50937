"""Generation: the generator, its decoders, sampling, beam search and scoring."""
