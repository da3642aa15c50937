"""Helpers for a family's torch-free ``shapes`` (the name and shape of every tensor a model saves, from
its config alone): the store lists models and checks their weights files against their configs without
loading torch. Each family's shapes.py uses them; tests build every architecture on the meta device, in
many configurations, and compare."""
from __future__ import annotations

Shapes = dict[str, tuple[int, ...]]


def linear(name: str, n_in: int, n_out: int, bias: bool = True) -> Shapes:
    return {f"{name}.weight": (n_out, n_in), **({f"{name}.bias": (n_out,)} if bias else {})}


def norm(name: str, width: int) -> Shapes:
    return {f"{name}.weight": (width,), f"{name}.bias": (width,)}
