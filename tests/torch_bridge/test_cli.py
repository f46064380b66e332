"""``descend train --engine torch``: the default job through PyTorch, and its bad flags."""

from __future__ import annotations

import re
import subprocess
import sys

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
