"""The n-gram's tensors before counting, torch-free: the counts' sizes (and so their saved shapes)
depend on the data, so the store checks only their names and that each is 1-D."""
from __future__ import annotations


def of(c) -> dict[str, tuple[int, ...]]:
    out = {"_dummy": (0,), "unigram": (c.vocab_size,)}
    for k in range(2, c.order + 1):
        out.update({f"ctx_codes_{k}": (0,), f"ctx_counts_{k}": (0,), f"row_ptr_{k}": (1,), f"cols_{k}": (0,),
                    f"vals_{k}": (0,)})
    return out
