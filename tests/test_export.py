"""lmcore export: ONNX step models of every family and Hugging Face transformers models give lmcore's
logits (token by token, within 1e-4) and its greedy text; their tokenizers split text into lmcore's ids;
bad requests get one line and leave nothing behind."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lmcore import SamplingSettings, Store, Tokenizer, build_vocab, encode, load_model
from lmcore.cli.main import main
from lmcore.generation.decoders import decoder_for
from lmcore.generation.generator import Generator
from lmcore.models import build_model, preset_config
from tests import factories

pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[test]')")
pytest.importorskip("onnxscript", reason="the export extra is not installed (pip install -e '.[test]')")
pytest.importorskip("transformers", reason="the export extra is not installed (pip install -e '.[test]')")

from lmcore.export import export_model  # noqa: E402

TOL = 1e-4
STEPS = 200
PROMPT = "The "


def save_model(store: Store, name: str, arch: str, text: str, level: str = "char", prep: str = "raw",
               **model) -> None:
    """A tiny model of ``arch`` with a real vocabulary of ``text``, saved through the store: the n-gram
    counts the text; the others get random weights spread wide enough that the next token is rarely a
    near tie."""
    tok = Tokenizer(level, prep, **({"vocab_size": 300} if level == "bpe" else {}))
    tok = tok.fitted([tok.preprocess(text)])
    pre = tok.preprocess(text)
    vocab = build_vocab(pre, tok)
    cfg = preset_config(arch, "tiny", vocab_size=len(vocab), **model)
    torch.manual_seed(1)
    m = build_model(cfg)
    if arch == "ngram":
        m.fit(encode(pre, tok, vocab))
    else:
        with torch.no_grad():
            for p in m.parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, 1.5 / p.shape[-1] ** 0.5)
                else:
                    p.add_(torch.randn_like(p) * 0.3)
    ck, _ = factories.checkpoint(name, arch)
    ck = replace(ck, model=cfg, vocab=vocab, tokenizer=tok, params=m.num_params())
    store.save(name, ck, m.state_dict())


def readme_code(folder: Path) -> str:
    text = (folder / "README.md").read_text("utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def run_readme(folder: Path, code: str) -> dict:
    """Run README code in the exported folder, as a user would paste it; its namespace afterwards."""
    ns: dict = {"__name__": "readme"}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        exec(compile(code, str(folder / "README.md"), "exec"), ns)
    finally:
        os.chdir(cwd)
    return ns


def lmcore_greedy(store: Store, name: str, prompt: str, n: int) -> tuple[list[int], list[int], str]:
    """lmcore's prompt ids, greedy token ids and text."""
    model, vocab, tok = load_model(store, name)
    gen = Generator(model, vocab, tok)
    stream = gen.stream(prompt, SamplingSettings(temperature=0, max_tokens=n))
    outs = list(stream)
    return gen.encode_prompt(prompt)[0], [t.token_id for t in outs], "".join(t.text for t in outs)


ONNX_CASES = [
    ("ngram", "char", {"order": 3}),
    ("ngram", "word", {"order": 1}),
    ("rnn", "char", {"input": "onehot"}),
    ("gru", "char", {"impl": "scratch"}),
    ("lstm", "bpe", {}),
    ("lstm", "char", {"impl": "scratch", "num_layers": 2}),
    ("mingru", "char", {}),
    ("minlstm", "word", {}),
    ("transformer", "char", {"pos": "learned"}),
    ("transformer", "bpe", {"pos": "rotary"}),
]


@pytest.mark.parametrize("arch,level,model", ONNX_CASES,
                         ids=[f"{a}-{lv}-{'-'.join(map(str, m.values())) or 'default'}" for a, lv, m in ONNX_CASES])
def test_onnx_step_model_gives_lmcores_logits_and_greedy_text(home, tmp_path, prose_text, arch, level, model):
    store = Store(home)
    save_model(store, "m", arch, prose_text[:20_000], level, **model)

    def text_of(tok):
        return prose_text[5_000:5_000 + (1_000 if tok.level == "char" else 3_000)]

    out = tmp_path / "onnx"
    summary = export_model(store, "m", "onnx", out)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "lmplay.json", "model.onnx", "tokenizer.json",
                                                      "vocab.json"]
    assert summary["check"]["max_abs_logit_diff"] <= TOL
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left

    # the README's code, pasted as is, prints the prompt and lmcore's greedy text
    code = readme_code(out)
    ids, greedy, text = lmcore_greedy(store, "m", PROMPT, STEPS)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ns = run_readme(out, code)
    assert ns["ids"] == ids  # tokenizer.json splits the prompt into lmcore's ids
    assert ns["out"] == greedy
    _, vocab, tok = load_model(store, "m")
    assert buf.getvalue() == tok.join(vocab.decode(ids + greedy)) + "\n"
    assert text in buf.getvalue()

    # token by token over 200 tokens of text (a greedy path may repeat itself): the README's feed()
    # against lmcore's decoder
    ns = run_readme(out, code.split("ids = tok.encode(PROMPT)")[0])
    m, vocab, tok = load_model(store, "m")
    seq = vocab.encode(tok.tokenize(text_of(tok)))[: STEPS + 3]
    assert len(seq) == STEPS + 3
    dec = decoder_for(m, "cpu")
    worst = float(np.abs(ns["feed"](seq[:3]) - dec.prefill(seq[:3])).max())
    for t in seq[3:]:
        worst = max(worst, float(np.abs(ns["feed"]([t]) - dec.step(t)).max()))
    assert worst <= TOL


HF_CASES = [
    ("learned", "char", "raw", True),
    ("rotary", "char", "raw", True),
    ("learned", "word", "raw", False),
    ("rotary", "bpe", "raw", False),
    ("learned", "bpe", "raw", True),
    ("rotary", "word", "d2l", True),
    ("learned", "char", "d2l", True),
]


@pytest.mark.parametrize("pos,level,prep,tie", HF_CASES, ids=["-".join(map(str, c)) for c in HF_CASES])
def test_hf_model_loads_with_auto_classes_and_gives_lmcores_logits_and_greedy_text(
        home, tmp_path, prose_text, pos, level, prep, tie):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store = Store(home)
    text = prose_text[:20_000]
    save_model(store, "tf", "transformer", text, level, prep, pos=pos, context=64, tie_weights=tie)
    out = tmp_path / "hf"
    summary = export_model(store, "tf", "hf", out)
    assert summary["check"]["max_abs_logit_diff"] <= TOL
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == (["GPT2LMHeadModel"] if pos == "learned" else ["GPTNeoXForCausalLM"])
    assert "auto_map" not in config  # no remote code

    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    hf_tok = AutoTokenizer.from_pretrained(out)
    model, vocab, tok = load_model(store, "tf")

    # the tokenizer: lmcore's ids for a passage, and lmcore's text back from ids
    passage = text[5_000:6_500]
    ours = vocab.encode(tok.tokenize(passage))
    theirs = [i if i < len(vocab) else 0 for i in hf_tok(passage, add_special_tokens=False).input_ids]
    assert theirs == ours
    assert hf_tok.decode(ours) == tok.join(vocab.decode(ours))

    # greedy generation within the context, and every logit on the way
    prompt = "The Time"
    ids, greedy, _ = lmcore_greedy(store, "tf", prompt, 64 - 12)
    assert hf_tok(prompt, add_special_tokens=False).input_ids == ids
    generated = hf.generate(torch.tensor([ids]), max_new_tokens=len(greedy))[0].tolist()
    assert generated == ids + greedy
    with torch.no_grad():
        logits = hf(torch.tensor([ids + greedy])).logits[0, :, : len(vocab)].numpy()
    dec = decoder_for(model, "cpu")
    worst = float(np.abs(logits[len(ids) - 1] - dec.prefill(ids)).max())
    for i, t in enumerate(greedy[:-1]):
        worst = max(worst, float(np.abs(logits[len(ids) + i] - dec.step(t)).max()))
    assert worst <= TOL


# ------------------------------------------------------------------------------------------ bad input
def cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse
        rc = exc.code
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_cli_export_writes_the_folder_and_says_what_it_checked(home, tmp_path, capsys):
    factories.save(Store(home), "g", "gru")
    out = tmp_path / "exported"
    out.mkdir()  # an empty folder is fine
    rc, stdout, err = cli(capsys, "export", "g", "--format", "onnx", "--out", str(out))
    assert rc == 0, err
    assert f"exported 'g' (gru) as ONNX to {out}: README.md, lmplay.json, model.onnx" in stdout
    assert "checked: the logits from onnxruntime match lmcore's within" in stdout
    rc, stdout, err = cli(capsys, "export", "g", "--format", "onnx", "--out", str(tmp_path / "j"), "--json")
    assert rc == 0 and err == ""
    event = json.loads(stdout)
    assert event["event"] == "exported" and event["format"] == "onnx" and "model.onnx" in event["files"]
    assert event["check"]["tokens"] == STEPS and event["check"]["max_abs_logit_diff"] <= TOL


@pytest.mark.parametrize("argv,expected", [
    (["--format", "tflite"], "invalid choice: 'tflite'"),
    (["--format", "hf"], "'hf' has no architecture for lstm models"),
])
def test_cli_export_refuses_an_unknown_format_or_a_family_it_cannot_hold(home, tmp_path, capsys, argv, expected):
    factories.save(Store(home), "l", "lstm")
    out = tmp_path / "o"
    rc, stdout, err = cli(capsys, "export", "l", *argv, "--out", str(out))
    assert rc != 0 and expected in err and len(err.strip().splitlines()) == 1
    assert "--format onnx" in err or "tflite" in err
    assert not out.exists()


def test_cli_export_never_writes_into_a_folder_that_holds_something_or_into_the_store(home, tmp_path, capsys):
    factories.save(Store(home), "t", "transformer")
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc, _, err = cli(capsys, "export", "t", "--format", "hf", "--out", str(out))
    assert rc == 1 and "is not empty" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    rc, _, err = cli(capsys, "export", "t", "--format", "onnx", "--out", str(tmp_path / "file"))
    assert rc == 1 and "not a folder" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    rc, _, err = cli(capsys, "export", "t", "--format", "onnx", "--out", str(tmp_path / "link"))
    assert rc == 1 and "is a symbolic link (not followed)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "elsewhere").exists()
    inside = Store(home).root / "exported"  # it would list as a damaged model
    rc, _, err = cli(capsys, "export", "t", "--format", "onnx", "--out", str(inside))
    assert rc == 1 and "inside lmplay's model store" in err and len(err.strip().splitlines()) == 1
    assert not inside.exists()


def test_cli_export_of_a_missing_damaged_or_bidirectional_model_is_one_line(home, tmp_path, capsys):
    store = Store(home)
    factories.save(store, "bi", "lstm", bidirectional=True)
    factories.save(store, "broken", "gru")
    weights = next(store.path("broken").glob("weights-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    out = tmp_path / "o"
    for name, expected in (("nope", "no model named 'nope'"), ("broken", "model 'broken' is damaged"),
                           ("bi", "cannot generate, so there is no step to export: a bidirectional model")):
        rc, _, err = cli(capsys, "export", name, "--format", "onnx", "--out", str(out))
        assert rc == 1 and expected in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failed_export_leaves_no_folder_behind(home, tmp_path, capsys, monkeypatch):
    factories.save(Store(home), "m", "mingru")

    def fail(*args, **kwargs):
        raise RuntimeError("the exporter broke\nwith details")

    monkeypatch.setattr(torch.onnx, "export", fail)
    out = tmp_path / "o"
    rc, _, err = cli(capsys, "export", "m", "--format", "onnx", "--out", str(out))
    assert rc == 1 and "could not export the mingru model to ONNX (the exporter broke)" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [home]


def test_export_without_its_packages_says_which_extra_to_install(home, tmp_path, capsys, monkeypatch):
    import importlib.util

    factories.save(Store(home), "t", "transformer")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a))
    rc, _, err = cli(capsys, "export", "t", "--format", "hf", "--out", str(tmp_path / "o"))
    assert rc == 1 and "hf export needs transformers: pip install 'lmplay[export]'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
