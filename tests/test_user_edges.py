"""The rough edges a new user hit (issue 19, points 2 and 6-9): help texts and defaults, push
without a token or a network, progress of `project`, KID's spread and BEGAN's confusion
numbers explained, the cards (exported and shipped), and files the README's commands write."""
from __future__ import annotations

import argparse
import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch
from huggingface_hub import ModelCard

import ganzoo
from ganzoo import eval as geval
from ganzoo import hub
from ganzoo.cli import build_parser, main
from ganzoo.errors import GanzooError

REPO = Path(__file__).resolve().parents[1]
# every released model: the catalog's entries with a shipped folder (a new release is checked without editing this file)
RELEASED = sorted(json.loads((REPO / "ganzoo" / "catalog.json").read_text())["models"])




def _subparsers(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from _subparsers(sub, prefix + (name,))


# ---- point 8: --help ------------------------------------------------------------------------------
def test_every_option_of_every_command_has_help():
    missing = []
    for path, sub in _subparsers(build_parser()):
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                missing.append(f"ganzoo {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("number of images (default: 64)", "PNG to write (default: samples.png)", "(default: 0)"):
        assert shown in text, shown
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--seed", "--log-every", "--sample-every", "--checkpoint-every"):
        assert re.search(re.escape(option) + r" \S+ [a-z]", text), option
    assert "(default: 500)" in text and "(default: None)" not in text and "(default: False)" not in text
    with pytest.raises(SystemExit):
        main(["push", "--help"])
    text = capsys.readouterr().out
    assert "OUT_FOLDER" not in text and "repository's name" in " ".join(text.split())


def test_readme_documents_catalog_mnist_and_the_began_description_is_exact():
    readme = (REPO / "README.md").read_text()
    assert "ganzoo catalog add" in readme and "`mnist:DIR`" in readme
    spec = ganzoo.plugins.get_registry().architectures["began"]
    assert "Trained 8 epochs" not in spec.description and "source trains it" in spec.description


# ---- point 9: files the README and benchmarks write -----------------------------------------------
def test_readme_commands_do_not_overwrite_tracked_files():
    readme = (REPO / "README.md").read_text()
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split())
    if not tracked:
        pytest.skip("not a git checkout")
    written = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        words = shlex.split(block.replace("\\\n", " "), comments=True)
        for flag, value in zip(words, words[1:]):
            if flag in ("-o", "--output", "--json", "--save-latent", "--save-latents"):
                written.append(value)
    assert written and not [w for w in written if w in tracked], written
    gallery = (REPO / "docs" / "gallery" / "README.md").read_text()
    assert "-o docs/gallery/dcgan_fashion.png" in gallery


def test_benchmark_results_are_ignored_by_git():
    out = subprocess.run(["git", "check-ignore", "-q", "benchmark-results/benchmarks.json"], cwd=REPO)
    if out.returncode == 128:
        pytest.skip("not a git checkout")
    assert out.returncode == 0


# ---- point 2: push without a token or a network ---------------------------------------------------
def test_push_checks_the_token_first_and_names_the_endpoint_it_cannot_reach(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    folder = REPO / "models" / "dcgan_fashion"
    assert main(["push", str(folder), "--repo", "org/m"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Hub token" in err and "hf auth login" in err and "HF_TOKEN" in err
    # a closed port: the connection is refused, as with no network
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setattr(hf_constants, "ENDPOINT", endpoint)
    assert main(["push", str(folder), "--repo", "org/m", "--token", "hf_x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot reach the Hub at {endpoint}" in err and "HF_ENDPOINT" in err, err


# ---- point 6: project's progress, KID's spread, BEGAN's confusion numbers --------------------------
def test_project_shows_progress_unless_quiet(tiny_arch, capsys):
    from ganzoo.latent import project

    torch.manual_seed(0)
    G, _ = ganzoo.create("tiny", image_size=16, channels=1)
    target = G.sample(1, seed=5)[0]
    project(G, target, steps=3, restarts=1, progress=True)
    assert "projecting" in capsys.readouterr().err
    project(G, target, steps=3, restarts=1, progress=False)
    assert "projecting" not in capsys.readouterr().err


def test_kid_reports_no_spread_when_every_subset_is_the_whole_set(tiny_arch, tiny_fmnist):
    from ganzoo.data import load_dataset

    torch.manual_seed(0)
    G, _ = ganzoo.create("tiny", image_size=16, channels=1)
    ds = load_dataset(f"fashion-mnist:{tiny_fmnist}", image_size=16, channels=1)  # 32 real images
    whole = geval.evaluate(G, ds, n=32, metrics=["kid"], extractors=["fmnist"], progress=False)
    kid = whole["entries"][0]
    assert "std" not in kid and "spread" in kid and "kid_fmnist_classifier_std" not in whole["metrics"]
    line = next(x for x in geval.format_report(whole).splitlines() if x.startswith("kid"))
    assert "±" not in line and "no spread" in line and "--kid-subset-size 16" in line
    part = geval.evaluate(G, ds, n=32, metrics=["kid"], extractors=["fmnist"], progress=False, kid_subset_size=16)
    kid = part["entries"][0]
    assert kid["std"] > 1e-6 and "spread" not in kid
    assert "±" in next(x for x in geval.format_report(part).splitlines() if x.startswith("kid"))


def test_an_autoencoder_discriminators_numbers_are_explained():
    e = {"auc": 0.11, "mean_error_real": 0.2, "mean_error_generated": 0.09}
    text = "\n".join(geval.reconstruction_note(e))
    assert "generated/real 0.45" in text and "max(AUC, 1-AUC) = 0.8900" in text and "BEGAN's design" in text
    assert "BEGAN's design" not in "\n".join(geval.reconstruction_note({**e, "auc": 0.7}))


# ---- point 7: cards ---------------------------------------------------------------------------------
def test_portable_paths_leave_no_absolute_path(tmp_path):
    cmd = f"ganzoo train x --data folder:{tmp_path}/data --out {tmp_path}/runs/a --resume --set k=a:b"
    got = hub.portable_paths(cmd, start=tmp_path)
    assert got == "ganzoo train x --data folder:data --out runs/a --resume --set k=a:b"
    assert hub.portable_paths("--data=/x/y https://a.b/c", start="/x") == "--data=y https://a.b/c"


def test_exported_card_names_a_working_ref_and_seed_and_no_machine_path(tiny_arch, tiny_fmnist, tmp_path,
                                                                        monkeypatch):
    import ganzoo.trainer
    from ganzoo.trainer import TrainConfig, train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ganzoo.trainer.Trainer, "plot_losses", lambda self: None)
    run = tmp_path / "runs" / "r"
    data = f"fashion-mnist:{tiny_fmnist}"  # an absolute path, as a user may type it
    train(TrainConfig(arch="tiny", data=data, steps=1, seed=1), run, progress=False,
          command=f"ganzoo train tiny --data {data} --out {run}")
    out = hub.export_model(run, tmp_path / "models" / "my_model")
    text = (out / "README.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("ganzoo sample "))
    assert line.startswith("ganzoo sample models/my_model -n 64 --seed 1234 ")
    assert 'ganzoo.load("models/my_model")' in text and "seed=1234" in text
    assert str(tmp_path) not in text and "--out runs/r" in text
    # the command the card gives works as written, from where the export ran, and draws the card's grid
    assert main(shlex.split(line, comments=True)[1:]) == 0
    assert Path("grid.png").read_bytes() == (out / "samples.png").read_bytes()


def test_an_other_license_gets_a_name_and_a_link_and_utkface_its_dataset_id():
    card = hub.model_card({"architecture": "tiny", "license": "other", "data": {"kind": "utkface"},
                           "datasets": hub.KNOWN_DATA["utkface"]["datasets"]})
    assert card.data.license_name == "utkface-non-commercial-research"
    assert card.data.license_link == "https://susanqq.github.io/UTKFace/"
    assert card.data.datasets == ["py97/UTKFace-Cropped"]
    card = hub.model_card({"architecture": "tiny", "license": "other", "data": {"kind": "folder"}})
    assert card.data.license_name == "other"


@pytest.mark.parametrize("name", RELEASED)
def test_shipped_cards_agree_with_sample_and_carry_their_metadata(name):
    folder = REPO / "models" / name
    text = (folder / "README.md").read_text()
    card = ModelCard.load(folder / "README.md")
    assert "![64 samples at seed 1234](samples.png)" in text
    assert f"ganzoo sample {name} -n 64 --seed 1234 -o grid.png" in text and "seed=1234" in text
    assert not re.search(r"(?<![\w.])/(work|home|root|tmp)/", text), "a machine path in the card"
    assert card.data.datasets, "no datasets: entry"
    if card.data.license == "other":
        assert card.data.license_name and card.data.license_link
    for result in card.data.eval_results or []:
        assert result.dataset_type != "folder"
    config = json.loads((folder / "config.json").read_text())
    assert config["datasets"] == card.data.datasets
    # the card is what its config.json renders to (recipe, evaluations): not an older template's output;
    # after a template change, `python -c "from ganzoo import hub; hub.write_card('models/NAME')"` and
    # `ganzoo catalog add` bring it up to date
    current = hub.model_card(config, ref=name)

    def text(c):  # machine paths are written relative to where the card was rendered: not compared
        return [line for line in c.text.splitlines() if "../" not in line]

    assert current.data.to_dict() == card.data.to_dict() and text(current) == text(card)


def test_a_checkpoint_from_another_architecture_is_a_one_line_error(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    """Issue 21's bad input: a run whose checkpoint holds another architecture's weights (copied
    in from another run) given to resume, finetune, sample and eval: one line naming the file and
    the run.json to check, exit 2, and the checkpoint left in place."""
    import shutil

    pytest.importorskip("ganzoo_mlp")
    from ganzoo.trainer import latest_checkpoint

    data = f"fashion-mnist:{tiny_fmnist}"
    common = ["--steps", "1", "--batch-size", "4", "--checkpoint-every", "1", "--sample-every", "100",
              "--quiet", "--threads", "1"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "tiny", "--data", data, "--out", str(a), *common]) == 0
    assert main(["train", "mlp", "--data", data, "--out", str(b), *common]) == 0
    ckpt = latest_checkpoint(a)
    for name in ("generator.safetensors", "discriminator.safetensors"):
        shutil.copy(latest_checkpoint(b) / name, ckpt / name)
    capsys.readouterr()
    for argv in (["train", "--resume", "--steps", "2", "--out", str(a), "--quiet"],
                 ["finetune", str(a), "--data", data, "--steps", "1", "--out", str(tmp_path / "f"), "--quiet"],
                 ["sample", str(a), "--out", str(tmp_path / "s.png")],
                 ["eval", str(a), "--extractor", "fmnist", "--metrics", "fid", "-n", "8"]):
        rc = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, (argv, err)
        assert "weights do not match the architecture" in err[0] and f"check that {a / 'run.json'} names" in err[0]
        assert ckpt.exists()


def test_an_unknown_option_of_a_command_points_at_that_commands_help(capsys):
    from ganzoo.cli import main

    with pytest.raises(SystemExit) as info:
        main(["export", "dcgan_fashion", "out", "--format", "onnx", "--opset", "9"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "\n" not in err, err
    assert err == "ganzoo export: error: unrecognized arguments: --opset 9 (see `ganzoo export --help`)", err
    with pytest.raises(SystemExit):
        main(["--bogus"])
    assert "(see `ganzoo --help`)" in capsys.readouterr().err
