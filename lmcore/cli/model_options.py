"""``lmcore train``'s model options (--arch, --preset and each family's own: --hidden, --heads, --order …):
the arguments they add, and what a parse of them says about the model to build."""
from __future__ import annotations

# the option's destination on the parsed arguments -> preset_config's keyword
_OVERRIDES = {"impl": "impl", "layers": "num_layers", "hidden": "hidden", "embed": "embed", "input": "input",
              "heads": "heads", "context": "context", "pos": "pos", "dropout": "dropout",
              "bidirectional": "bidirectional", "order": "order", "epsilon": "epsilon"}


def add_model_options(t) -> None:
    """Add the options that choose and shape a new model to the ``train`` parser ``t``."""
    from ..models import ARCHS, IMPLS, PRESET_NAMES

    t.add_argument("--arch", choices=ARCHS)
    t.add_argument("--impl", choices=IMPLS, help="recurrent models: fused (torch.nn, cuDNN) or scratch")
    t.add_argument("--preset", choices=PRESET_NAMES)
    t.add_argument("--layers", type=int)
    t.add_argument("--hidden", type=int, help="recurrent state size / transformer width")
    t.add_argument("--embed", type=int, help="embedding size of recurrent models")
    t.add_argument("--input", choices=("embed", "onehot"))
    t.add_argument("--heads", type=int)
    t.add_argument("--context", type=int, help="transformer context length")
    t.add_argument("--pos", choices=("learned", "rotary"))
    t.add_argument("--dropout", type=float)
    t.add_argument("--bidirectional", action="store_true", help="(cannot generate: for the chapters' lesson)")
    t.add_argument("--order", type=int, help="n-gram order")
    t.add_argument("--epsilon", type=float, help="n-gram Laplace smoothing")


def model_overrides(args) -> dict:
    """The model options given on the command line, as keywords for ``preset_config`` (None: not given)."""
    return {kw: (getattr(args, dest) if getattr(args, dest) is not False else None) for dest, kw in _OVERRIDES.items()}


def model_options_given(args) -> list[str]:
    """The flags of the model options given (``--arch``, ``--preset`` included), as typed."""
    return [f"--{dest.replace('_', '-')}" for dest in ("arch", "preset", *_OVERRIDES)
            if getattr(args, dest) not in (None, False)]
