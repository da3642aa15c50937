"""Model families are found, not listed: every family declares what the rest of lmplay asks of it; a
family from an installed package (the ``lmplay.families`` entry point group) and a family folder copied
under a new name each train, save, list and generate with no other file touched."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import lmcore
import lmcore.models
from lmcore import SamplingSettings, Store
from lmcore.cli.main import main
from lmcore.models import (
    PRESET_NAMES,
    VIEWS,
    Family,
    LanguageModel,
    ModelConfig,
    build_model,
    families,
    family,
    option,
    preset_config,
    registry,
    tensor_shapes,
)

ROOT = Path(__file__).resolve().parents[1]
ALL = [(f, a) for f in families() for a in f.archs]


# ---------------------------------------------------------------- what every family declares

@pytest.mark.parametrize("fam", families(), ids=lambda f: f.name)
def test_every_family_declares_names_options_presets_and_capabilities(fam):
    assert re.fullmatch(r"[a-z][a-z0-9_]*", fam.name) and fam.archs
    assert dataclasses.is_dataclass(fam.options)
    for f in fam.option_fields():
        assert f.metadata["help"], f"{fam.name}.{f.name} has no help"
        assert f.default is not dataclasses.MISSING, f"{fam.name}.{f.name} has no default"
    assert fam.views <= set(VIEWS) and isinstance(fam.windowed, bool) and isinstance(fam.stateful, bool)
    assert not (fam.windowed and fam.stateful)  # a context window or a carried state
    for arch, description in fam.archs.items():
        assert family(arch) is fam and description.strip() and fam.label(arch).strip()
        assert set(fam.presets[arch]) == set(PRESET_NAMES)
        for preset in PRESET_NAMES:
            assert set(fam.preset(arch, preset)["model"]) <= set(fam.option_names())
            config = preset_config(arch, preset, vocab_size=11)
            assert ModelConfig.from_dict(config.to_dict()) == config
            assert fam.describe(config).startswith(arch)
        assert issubclass(fam.model_class(arch), LanguageModel)


@pytest.mark.parametrize("fam,arch", ALL, ids=[a for _, a in ALL])
def test_a_family_says_what_its_models_do(fam, arch):
    config = preset_config(arch, "tiny", vocab_size=11)
    model = build_model(config)
    assert (model.stateful, model.trainable) == (fam.stateful, fam.trainable)
    assert model.context_window == (config.context if fam.windowed else None)
    assert model.shows_attention == fam.shows(config, "attention")
    assert bool(model.unit_values) == fam.shows(config, "units")
    if fam.fixed_shapes:  # the torch-free shapes are the built model's
        assert tensor_shapes(config) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_a_new_model_without_a_chosen_architecture_has_the_default_one():
    assert registry.default_arch() in registry.archs()
    assert sum(bool(f.default) for f in families()) == 1


def test_an_unknown_architecture_names_the_known_ones():
    with pytest.raises(lmcore.ConfigError, match="unknown architecture 'cnn': use one of .*lstm"):
        family("cnn")
    with pytest.raises(lmcore.ConfigError, match="unknown architecture"):
        ModelConfig.from_dict({"arch": "cnn"})


def test_options_are_the_familys_own():
    with pytest.raises(lmcore.ConfigError, match="--heads applies to transformer.*, not to lstm"):
        preset_config("lstm", "tiny", heads=2)
    with pytest.raises(lmcore.ConfigError, match="no model has an option 'colour'"):
        preset_config("lstm", "tiny", colour=2)
    with pytest.raises(lmcore.ConfigError, match="order must be between 1 and 10"):
        preset_config("ngram", "tiny", order=40)
    assert preset_config("transformer", "tiny", impl="fused").to_dict() == preset_config("transformer", "tiny").to_dict()
    # an old checkpoint's flat config held every family's options: the others are ignored
    old = dict(preset_config("gru", "tiny", vocab_size=5).to_dict(), heads=4, order=3, pos="learned")
    assert ModelConfig.from_dict(old) == preset_config("gru", "tiny", vocab_size=5)


# ---------------------------------------------------------------- a family from an installed package

@dataclasses.dataclass
class BigramOptions:
    scale: float = option(0.02, "the initial weights' spread", range=(0.0, 1.0))


class BigramLM(LanguageModel):
    """Next-token logits from the current token alone: a table."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)
        nn.init.normal_(self.table.weight, 0.0, config.scale)

    def forward(self, x, state=None):
        return self.table(x), None


BIGRAM = Family(name="bigram", archs={"bigram": "bigram: a table of next-token logits"},
                labels={"bigram": "Bigram"}, options=BigramOptions, model=BigramLM,
                presets={"bigram": {p: {"model": {}, "train": {"batch_size": 8, "seq_len": 16, "lr": 0.1}}
                                    for p in PRESET_NAMES}})


@pytest.fixture
def families_found_again():
    registry.refresh()
    yield
    registry.refresh()


@pytest.fixture
def installed_bigram(tmp_path, monkeypatch, families_found_again):
    """A distribution on sys.path whose entry point in group lmplay.families is BIGRAM."""
    dist = tmp_path / "site" / "toy_bigram-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-bigram\nVersion: 0.1\n", "utf-8")
    (dist / "entry_points.txt").write_text(f"[{registry.GROUP}]\nbigram = {__name__}:BIGRAM\n", "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.refresh()


def _lists_and_generates(home: Path, name: str, arch: str, capsys) -> None:
    store = Store(home)
    (entry,) = [e for e in store.list() if e.name == name]
    assert entry.ok and entry.checkpoint.model.arch == arch
    capsys.readouterr()
    assert main(["--home", str(home), "models"]) == 0
    out = capsys.readouterr().out
    row = next((line.split() for line in out.splitlines() if line.split()[:1] == [name]), out)
    assert row[1] == family(arch).describe(entry.checkpoint.model) == arch  # the arch column
    model, vocab, tok = lmcore.load_model(store, name)
    text = lmcore.Generator(model, vocab, tok).complete("The ", SamplingSettings(max_tokens=12, seed=1))
    assert text and text == lmcore.Generator(model, vocab, tok).complete("The ", SamplingSettings(max_tokens=12, seed=1))


def test_a_family_from_an_installed_package_trains_saves_lists_and_generates(installed_bigram, tmp_path, prose,
                                                                             capsys):
    assert family("bigram") is BIGRAM and "bigram" in lmcore.models.ARCHS and "bigram" in registry.archs()
    home = tmp_path / "home"
    done = lmcore.train("bi", arch="bigram", preset="tiny", corpus=str(prose), steps=4, eval_every=4,
                        eval_tokens=256, threads=1, home=home)
    assert isinstance(done, lmcore.DoneEvent) and done.saved
    _lists_and_generates(home, "bi", "bigram", capsys)


def test_a_family_that_cannot_load_is_skipped_with_its_reason(tmp_path, monkeypatch, families_found_again):
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n", "utf-8")
    (dist / "entry_points.txt").write_text(f"[{registry.GROUP}]\nnope = no_such_module_here:FAMILY\n", "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    assert "lstm" in registry.archs()
    assert any("nope" in p and "could not be loaded" in p for p in registry.problems())


# ---------------------------------------------------------------- a family folder copied under a new name

@pytest.fixture
def copied_family(tmp_path, monkeypatch, families_found_again):
    """lmcore/models/minrnn copied as a folder 'xrnn' of lmcore.models (a folder on its __path__), its
    declared names changed: minrnn -> xrnn, mingru -> xgru, minlstm -> xlstm."""
    folder = tmp_path / "models"
    shutil.copytree(ROOT / "lmcore" / "models" / "minrnn", folder / "xrnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in (folder / "xrnn").glob("*.py"):
        text = path.read_text("utf-8")
        for old, new in (("minrnn", "xrnn"), ("mingru", "xgru"), ("minlstm", "xlstm"), ("minGRU", "xGRU"),
                         ("minLSTM", "xLSTM")):
            text = text.replace(old, new)
        path.write_text(text, "utf-8")
    monkeypatch.setattr(lmcore.models, "__path__", [*lmcore.models.__path__, str(folder)])
    registry.refresh()
    yield
    for mod in [m for m in sys.modules if m.startswith("lmcore.models.xrnn")]:
        del sys.modules[mod]


def test_a_copied_family_folder_is_a_new_family(copied_family, tmp_path, prose, capsys):
    fam = family("xgru")
    assert fam.name == "xrnn" and set(fam.archs) == {"xgru", "xlstm"} and fam is not family("mingru")
    home = tmp_path / "home"
    for arch in ("xgru", "xlstm"):
        done = lmcore.train(f"copy-{arch}", arch=arch, preset="tiny", corpus=str(prose), steps=3, eval_every=3,
                            eval_tokens=256, threads=1, home=home)
        assert isinstance(done, lmcore.DoneEvent) and done.saved
        _lists_and_generates(home, f"copy-{arch}", arch, capsys)
    # the copy computes what the original does
    torch.manual_seed(0)
    copy = build_model(preset_config("xgru", "tiny", vocab_size=13)).eval()
    original = build_model(preset_config("mingru", "tiny", vocab_size=13)).eval()
    original.load_state_dict(copy.state_dict())
    x = torch.randint(0, 13, (2, 9))
    torch.testing.assert_close(copy(x)[0], original(x)[0])



# ---------------------------------------------------------------- the copied family through the CLI and the app

def test_a_copied_family_folder_works_from_the_command_line(copied_family, tmp_path, prose, capsys):
    """`lmcore train --arch xgru` (with an option the family declares), `generate`, `models` and
    `bench --arch xgru --quick` work for the copy: the CLI asks the registry, nothing else was touched."""
    home = str(tmp_path / "home")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "xgru" in capsys.readouterr().out
    assert main(["--home", home, "train", "cx", "--arch", "xgru", "--preset", "tiny", "--hidden", "48",
                 "--corpus", str(prose), "--steps", "3", "--eval-every", "3", "--eval-tokens", "256",
                 "--threads", "1", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "start" and events[0]["model"] == "xgru" and events[-1]["ok"]
    ck = Store(home).read("cx")
    assert (ck.model.arch, ck.model.hidden) == ("xgru", 48)

    assert main(["--home", home, "generate", "cx", "--prompt", "The ", "--length", "8", "--seed", "1", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    tokens = [t for t in lines if "event" not in t]
    assert len(tokens) == 8 and "".join(t["text"] for t in tokens)

    assert main(["--home", home, "models"]) == 0
    assert any(line.split()[:2] == ["cx", "xgru"] for line in capsys.readouterr().out.splitlines())

    assert main(["bench", "--arch", "xgru", "--quick", "--json", "--corpus", "pythondocs"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["bench"] for r in rows} == {"train", "memory", "generate", "first_char"}
    assert {r["arch"] for r in rows} == {"xgru"} and all(r["value"] for r in rows)


async def test_a_copied_family_folder_is_in_the_new_model_dialog(copied_family, home, prose):
    """The dialog lists the copy's architectures (the Select takes only its options), hides the options
    the copy does not declare, and creates and trains a model of it."""
    from textual.widgets import Input, Select

    from tui.app import create_app
    from tui.screens.new_model import NewModelScreen

    from .tui_helpers import wait_for

    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        scr = app.screen
        scr.query_one("#arch", Select).value = "xgru"
        scr.query_one("#preset", Select).value = "tiny"
        scr.query_one("#corpus", Select).value = "__path__"
        await pilot.pause()
        assert scr.query_one("#name", Input).value.startswith("xgru-")
        assert not any(row.display for row in scr.query(".row") if (row.id or "").startswith("opt-"))
        scr.query_one("#path", Input).value = str(prose)
        scr.query_one("#new-steps", Input).value = "3"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewModelScreen))
        await wait_for(pilot, lambda: any(e.ok and e.checkpoint.step == 3 for e in Store(home).list()), timeout=120)
        (entry,) = Store(home).list()
        assert entry.checkpoint.model.arch == "xgru" and entry.name.startswith("xgru-")
