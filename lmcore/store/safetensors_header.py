"""The header of a safetensors file (its tensors' names, shapes and the file's metadata), read and
validated without a tensor library: listing models needs neither torch nor numpy.

It accepts what the ``safetensors`` library accepts (tests/test_cli_startup.py compares the two on damaged
files): an 8-byte little-endian header length of at most 100 MB, a UTF-8 JSON object, every tensor's
bytes laid out back to back from offset 0 and matching its dtype and shape, and nothing after the last."""
from __future__ import annotations

import os

from .files import BadFile, parse_json

MAX_HEADER = 100_000_000  # the library's limit
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
        "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
        "I64": 64, "U64": 64}
_USIZE = 1 << 64


class HeaderError(ValueError):
    """Not a valid safetensors file; the message says why in a few words."""


def _usize(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _USIZE


def read(f) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """``(shapes, metadata)`` of the safetensors file open (binary) as ``f``; HeaderError if it is not one."""
    size = os.fstat(f.fileno()).st_size
    if size < 8:
        raise HeaderError("too short for a safetensors header")
    n = int.from_bytes(f.read(8), "little")
    if n > MAX_HEADER:
        raise HeaderError("its header is over 100 MB")
    if 8 + n > size:
        raise HeaderError("its header is longer than the file")
    raw = f.read(n)
    if len(raw) != n:
        raise HeaderError("it was cut short while read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError("its header is not UTF-8") from None
    if not text.startswith("{"):
        raise HeaderError("its header is not a JSON object")
    try:
        doc = parse_json(text)
    except BadFile as exc:
        raise HeaderError(f"its header {exc}") from None
    if not isinstance(doc, dict):
        raise HeaderError("its header is not a JSON object")
    metadata = doc.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HeaderError("its metadata is not a map of strings")
    tensors = []
    for name, info in doc.items():
        if not isinstance(info, dict) or not isinstance(info.get("dtype"), str) or info["dtype"] not in BITS:
            raise HeaderError(f"tensor {name[:60]!r} has no known dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(_usize(d) for d in shape)):
            raise HeaderError(f"tensor {name[:60]!r} has a bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_usize(o) for o in offsets)):
            raise HeaderError(f"tensor {name[:60]!r} has bad data offsets")
        tensors.append((tuple(offsets), name, tuple(shape), BITS[info["dtype"]]))
    end = 0
    for (start, stop), name, shape, bits in sorted(tensors, key=lambda t: t[0]):
        if start != end or stop < start:
            raise HeaderError(f"tensor {name[:60]!r} is not where the previous one ends")
        count = 1
        for d in shape:
            count *= d
        if count * bits >= _USIZE or (count * bits) % 8 or stop - start != count * bits // 8:
            raise HeaderError(f"tensor {name[:60]!r} does not fit its dtype and shape")
        end = stop
    if 8 + n + end != size:
        raise HeaderError("its size is not what its header says")
    return {name: shape for _, name, shape, _ in tensors}, metadata
