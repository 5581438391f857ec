"""What `train` chooses by itself and says at its start: bf16 autocast where the device computes
it natively (recorded in run.json, kept at --resume), the start line, the shape note, the speed line."""
from __future__ import annotations

import contextlib
import json

import pytest

from ganzoo import cli, precision, trainer
from ganzoo.trainer import TrainConfig, Trainer, train


def _cfg(data, **kw):
    base = dict(arch="tiny", data=f"fashion-mnist:{data}", steps=2, log_every=1, sample_every=100,
                checkpoint_every=1, seed=3, arch_config={"num_classes": 0})
    base.update(kw)
    return TrainConfig(**base)


def _recorded(run):
    return json.loads((run / "run.json").read_text())


def test_bf16_follows_the_devices_native_support_and_is_recorded(tiny_plugin, tiny_fmnist, tmp_path, monkeypatch):
    # what is chosen and recorded, not the arithmetic: bf16 is emulated (slow) on most CI CPUs
    monkeypatch.setattr(Trainer, "_autocast", lambda self: contextlib.nullcontext())
    t = Trainer(_cfg(tiny_fmnist), tmp_path / "here")
    assert t.cfg.bf16 is precision.bf16_supported("cpu")          # this machine's own answer
    monkeypatch.setattr(precision, "bf16_supported", lambda device: True)
    run = tmp_path / "amx"
    t = train(_cfg(tiny_fmnist), run, progress=False)
    assert t.cfg.bf16 is True and t.bf16_source == "auto"
    meta = _recorded(run)
    assert meta["train"]["bf16"] is True and meta["resolved"]["dtype"] == "bf16 autocast"
    # resumed on a machine without native bf16: the run keeps its recorded choice
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    t = train(_cfg(tiny_fmnist, steps=3), run, resume=True, progress=False)
    assert t.cfg.bf16 is True and t.bf16_source == "run.json" and "as the run recorded" in t.dtype_summary()
    # ... unless --no-bf16 says otherwise, which run.json records for the next --resume
    t = train(_cfg(tiny_fmnist, steps=4, bf16=False), run, resume=True, progress=False)
    assert t.cfg.bf16 is False
    meta = _recorded(run)
    assert meta["train"]["bf16"] is False and {k: v for k, v in meta["resume_changes"][-1].items()
                                                if k != "command"} == {"bf16": False, "at_step": 3}
    assert train(_cfg(tiny_fmnist, steps=5), run, resume=True, progress=False).cfg.bf16 is False
    # fp32 where not native, and --bf16 forces it
    t = Trainer(_cfg(tiny_fmnist), tmp_path / "avx2")
    assert t.cfg.bf16 is False and "no native bf16" in t.dtype_summary()
    t = Trainer(_cfg(tiny_fmnist, bf16=True), tmp_path / "forced")
    assert t.cfg.bf16 is True and "EMULATED" in t.dtype_summary()


def test_cli_bf16_flags(tiny_plugin, tiny_fmnist, tmp_path):
    args = cli.build_parser().parse_args(["train", "tiny", "--data", "x:y", "--out", "o"])
    assert args.bf16 is None
    assert cli.build_parser().parse_args(["train", "--out", "o", "--bf16"]).bf16 is True
    assert cli.build_parser().parse_args(["train", "--out", "o", "--no-bf16"]).bf16 is False
    assert cli.build_parser().parse_args(["finetune", "m", "--data", "x:y", "--out", "o", "--no-bf16"]).bf16 is False


def test_start_line_shape_note_and_speed_line(tiny_plugin, tiny_fmnist, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trainer.Trainer, "SPEED_STEPS", 2)
    monkeypatch.setattr(trainer.Trainer, "SPEED_SECONDS", 1e9)
    rc = cli.main(["train", "tiny", "--data", f"fashion-mnist:{tiny_fmnist}", "--out", str(tmp_path / "r"),
                   "--steps", "6", "--log-every", "3", "--sample-every", "100", "--checkpoint-every", "100",
                   "--threads", "1", "--set", "num_classes=0"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines[0]
    assert start.startswith("ganzoo train: tiny (nonsaturating) on fashion-mnist:")
    for part in ("(32 images)", "images 1x16x16", "batch 4", "steps 0->6", "device cpu (", "1 thread"):
        assert part in start, part
    assert ("; bf16 autocast (" in start) == precision.bf16_supported("cpu") != ("; fp32 (" in start)
    # Fashion-MNIST is 1x28x28; tiny trains at 16 by default and supports 16 and 32
    assert lines[1] == ("note: the data are 1x28x28, training at 1x16x16 (the architecture's default); "
                        "pass --image-size 32 to train near the data's own shape")
    speed_lines = [l for l in lines if l.startswith("speed: ")]
    assert len(speed_lines) == 1 and " s/step (" in speed_lines[0] and "over steps 2-3" in speed_lines[0]
    assert "the 6 requested steps take about" in speed_lines[0] and "(3 to go, done about" in speed_lines[0]
    assert lines[-1].startswith("trained 6 steps")
    # asked for explicitly: no note; --quiet: no lines at all
    rc = cli.main(["train", "tiny", "--data", f"fashion-mnist:{tiny_fmnist}", "--out", str(tmp_path / "q"),
                   "--steps", "6", "--image-size", "16", "--set", "num_classes=0", "--quiet"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(out) == 1 and out[0].startswith("trained 6 steps")


def test_speed_line_is_not_glued_to_the_progress_bar(tiny_plugin, tiny_fmnist, tmp_path, monkeypatch):
    """stdout and stderr on one terminal: the speed line starts a line of its own (it used to be
    appended to the bar's last state, '...loss_g=0.7]speed: ...')."""
    import io
    import re

    monkeypatch.setattr(trainer.Trainer, "SPEED_STEPS", 2)
    monkeypatch.setattr(trainer.Trainer, "SPEED_SECONDS", 1e9)
    both = io.StringIO()
    with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
        rc = cli.main(["train", "tiny", "--data", f"fashion-mnist:{tiny_fmnist}", "--out", str(tmp_path / "r"),
                       "--steps", "6", "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "100",
                       "--threads", "1", "--set", "num_classes=0", "--image-size", "16"])
    assert rc == 0
    segments = re.split(r"[\r\n]", both.getvalue())
    assert any(seg.startswith("speed: ") for seg in segments), both.getvalue()
    assert not any("]speed: " in seg for seg in segments)


def test_resume_line_says_resume(tiny_plugin, tiny_fmnist, tmp_path):
    t = Trainer(_cfg(tiny_fmnist), tmp_path / "other")
    t.step = 2
    assert t.start_line("resume").startswith("ganzoo resume: tiny") and "steps 2->2" in t.start_line("resume")


@pytest.mark.parametrize("seconds,text", [(0.25, "0.25 s"), (42, "42 s"), (725, "12 min 5 s"), (11520, "3 h 12 min")])
def test_durations(seconds, text):
    assert trainer._duration(seconds) == text
