"""How ``lmcore bench --arch seq2seq-transformer`` measures this family (lmcore/bench/plan.py reads it; no
torch): its greedy replies are compared with a decoder-only model of the same width, this architecture's
(lmcore/bench/pairs.py)."""

DECODER_ONLY = {"seq2seq-transformer": "lstm"}
