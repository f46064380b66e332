"""``descend train --engine torch``: the default job through PyTorch, and its bad flags."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import numpy as np

from descend.cli import main


def test_the_default_job_trains_through_torch(capsys):
    code = main(["train", "--engine", "torch", "--epochs", "2", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "optimizer: descend.torch.GD, lr=Armijo(c1=0.1" in out
    assert "stopped: completed 2 epochs (46 steps)" in out  # fit's own stop reasons
    accuracy = float(re.search(r"validation: loss [\d.]+, accuracy ([\d.]+)%", out).group(1))
    assert accuracy > 85.0  # digits after two epochs of the stochastic line search
    passes = float(re.search(r"\(([\d.]+) forward passes per step\)", out).group(1))
    assert 1.0 < passes < 4.0  # trials were made, a few per step


def test_max_steps_and_adam(capsys):
    code = main(["train", "--engine", "torch", "--optimizer", "adam", "--max-steps", "5",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "stopped: reached max_steps = 5 at step 4" in out and "for 5 steps" in out


def test_flags_the_torch_engine_does_not_take(capsys, tmp_path):
    code = main(["train", "--engine", "torch", "--checkpoint", str(tmp_path / "c.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--checkpoint not supported with --engine torch" in err[0]


def test_the_torch_engine_stops_on_fits_criteria_and_writes_the_history(capsys, tmp_path):
    # the same loop as fit: its criteria, its stop reasons, its History and CSV
    code = main(["train", "--engine", "torch", "--epochs", "5", "--grad-norm-below", "10",
                 "--history", str(tmp_path / "h.csv"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "stopped: gradient norm" in out and "< 10 at epoch 0" in out
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,lr,grad_norm") and len(rows) == 1 + 23


def test_without_torch_the_flag_says_what_to_install():
    code = ("import sys\nsys.modules['torch'] = None\nfrom descend.cli import main\n"
            "sys.exit(main(['train', '--engine', 'torch']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "descend train: --engine torch needs PyTorch: pip install 'descend[torch]'"]


SPIRALS = ["--data", "spirals", "--samples", "400", "--hidden", "16", "--quiet"]


def test_patience_reads_the_validation_loss_as_the_numpy_engine_does(capsys, tmp_path):
    said = {}
    for engine in ("descend", "torch"):
        csv_path = tmp_path / f"{engine}.csv"
        code = main(["train", "--engine", engine, *SPIRALS, "--lr", "0.3", "--epochs", "40",
                     "--patience", "2", "--history", str(csv_path)])
        out = capsys.readouterr().out
        assert code == 0, out
        said[engine] = next(line for line in out.splitlines() if line.startswith("stopped:"))
        rows = list(csv.DictReader(csv_path.open()))
        ends = [r for r in rows if r["epoch"]]
        assert ends and all(r["val_loss"] and r["val_accuracy"] for r in ends)
    assert "no lower validation loss for 2 epochs" in said["torch"]
    assert said["torch"] == said["descend"]


def test_ctrl_c_writes_the_history_and_exits_130(monkeypatch, capsys, tmp_path):
    from descend.torch import cli as torch_cli
    from descend.train import Callback

    class InterruptAt(Callback):
        def on_step_end(self, history, optimizer):
            if history.steps == 3:
                raise KeyboardInterrupt

    real = torch_cli.train_steps
    monkeypatch.setattr(torch_cli, "train_steps",
                        lambda *a, **k: real(*a, callbacks=[InterruptAt()], **k))
    h, png = tmp_path / "h.csv", tmp_path / "p.png"
    code = main(["train", "--engine", "torch", *SPIRALS, "--epochs", "3", "--history", str(h),
                 "--plot", str(png)])
    out, err = capsys.readouterr()
    assert code == 130
    said = [line for line in (out + err).splitlines() if "interrupted" in line]
    assert len(said) == 1 and said[0].startswith("stopped: interrupted at step 2 (epoch 0)")
    assert said[0] in err
    assert "validation: loss" in out
    assert len(h.read_text().splitlines()) == 1 + 3
    assert png.read_bytes().startswith(b"\x89PNG")


def test_history_to_stdout_and_a_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = np.round(100 * X[:, 0] - 40 * X[:, 1]).astype(int)
    data = tmp_path / "values.csv"
    data.write_text("a,b,y\n" + "".join(f"{r[0]},{r[1]},{t}\n" for r, t in zip(X, y)))
    done = subprocess.run([sys.executable, "-m", "descend", "train", "--engine", "torch",
                           "--data", str(data), "--hidden", "8", "--epochs", "3",
                           "--history", "-"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0][:2] == ["step", "loss"] and len(rows) == 1 + 3 * 3
    assert "regression (inferred" in done.stderr and "R^2" in done.stderr


def _history(tmp_path, name: str, *flags: str) -> list[dict[str, str]]:
    path = tmp_path / f"{name}.csv"
    code = main(["train", "--engine", "torch", "--max-steps", "6", "--quiet", "--history",
                 str(path), *flags])
    assert code == 0
    return list(csv.DictReader(path.open()))


def test_accumulate_takes_the_batches_steps_and_amp_trains(capsys, tmp_path):
    plain = _history(tmp_path, "plain")
    accumulated = _history(tmp_path, "acc", "--accumulate", "4")
    assert len(plain) == len(accumulated) == 6
    for a, b in zip(plain, accumulated):  # the same steps, to float32 rounding
        assert float(a["lr"]) == float(b["lr"])
        assert abs(float(a["loss"]) - float(b["loss"])) <= 1e-5 * float(a["loss"])
    bf16 = _history(tmp_path, "bf16", "--amp", "bf16")
    assert float(bf16[-1]["loss"]) < float(bf16[0]["loss"])


def test_torch_loop_flags_refused_where_they_make_no_sense(capsys):
    for flags, message in [(["--amp", "bf16"], "--amp needs --engine torch"),
                           (["--compile", "--accumulate", "2"],
                            "--accumulate, --compile needs --engine torch"),
                           (["--engine", "torch", "--batch-size", "4", "--accumulate", "8"],
                            "--accumulate 8 splits batches of 4"),
                           (["--engine", "torch", "--amp", "fp16"], "invalid choice")]:
        code = main(["train", *flags])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
