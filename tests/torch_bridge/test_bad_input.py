"""Bad input to descend.torch: one table of invalid constructor arguments, each raising the
error class and message that name the problem; and the optional import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch

import descend.torch as dt
from descend import optim
from descend.errors import ConfigError, DTypeError


def _p(*shape, **kw):
    return torch.nn.Parameter(torch.zeros(*shape, dtype=torch.float64, **kw))


def _sparse():
    t = torch.zeros(3, 3).to_sparse().requires_grad_()
    return t


BAD = [
    ("empty", lambda: dt.GD([], lr=0.1), ConfigError, "empty parameter list"),
    ("numpy array", lambda: dt.GD([np.zeros(3)], lr=0.1), TypeError,
     "take torch tensors, got ndarray"),
    ("no grad", lambda: dt.GD([torch.zeros(3)], lr=0.1), ConfigError,
     r"\(shape \(3,\)\) does not require grad"),
    ("non-leaf", lambda: dt.GD([_p(3) * 2], lr=0.1), ConfigError, "not a leaf tensor"),
    ("complex", lambda: dt.GD([torch.zeros(3, dtype=torch.complex64, requires_grad=True)]),
     DTypeError, "real floating-point tensors, got torch.complex64"),
    ("sparse", lambda: dt.GD([_sparse()], lr=0.1), ConfigError, "dense"),
    ("meta", lambda: dt.GD([_p(3, device="meta")], lr=0.1), ConfigError, "meta device"),
    ("one dict", lambda: dt.GD({"params": [_p(3)]}, lr=0.1), ConfigError, "got a dict"),
    ("group without params", lambda: dt.GD([{"lr": 0.1}]), ConfigError,
     "'params' entry"),
    ("twice", lambda: (lambda w: dt.GD([w, w], lr=0.1))(_p(3)), ConfigError, "twice"),
    ("lr string", lambda: dt.GD([_p(3)], lr="fast"), ConfigError,
     "lr must be a number, a schedule or a step rule"),
    ("momentum rule", lambda: dt.GD([_p(3)], momentum=optim.Armijo()), ConfigError,
     "momentum must be a number, got Armijo"),
    ("weight decay rule", lambda: dt.GD([_p(3)], weight_decay=optim.StrongWolfe()),
     ConfigError, "weight_decay must be a number, got StrongWolfe"),
    ("negative weight decay", lambda: dt.GD([_p(3)], weight_decay=-1.0), ConfigError,
     "weight_decay must lie in"),
    ("nesterov alone", lambda: dt.GD([_p(3)], nesterov=True), ConfigError, "momentum > 0"),
    ("beta rule", lambda: dt.Adam([_p(3)], betas=(optim.Armijo(), 0.9)), ConfigError,
     r"betas\[0\] must be a number"),
    ("eps rule", lambda: dt.Adam([_p(3)], eps=optim.Exact()), ConfigError,
     "eps must be a number"),
    ("subgradient search", lambda: dt.Subgradient([_p(3)], lr=optim.Armijo()), ConfigError,
     "not a descent method"),
    ("searches differ", lambda: dt.GD([{"params": [_p(3)], "lr": optim.Armijo()},
                                       {"params": [_p(2)], "lr": optim.Armijo()}]),
     ConfigError, "give those groups the same rule object"),
    ("search brings a direction", lambda: dt.Adam([{"params": [_p(3)]},
                                                   {"params": [_p(2)], "lr": 0.1}],
                                                  lr=optim.SmoothedArmijo()),
     ConfigError, "brings its own direction to every parameter"),
    ("lbfgs max_iter zero", lambda: dt.LBFGS([_p(3)], max_iter=0), ConfigError,
     "max_iter must be an int >= 1, got 0"),
    ("lbfgs max_iter float", lambda: dt.LBFGS([_p(3)], max_iter=20.0), ConfigError,
     "max_iter must be an int >= 1, got 20.0"),
    ("cg max_iter bool", lambda: dt.CG([_p(3)], max_iter=True), ConfigError,
     "max_iter must be an int >= 1, got True"),
    ("cg max_iter string", lambda: dt.CG([_p(3)], max_iter="5"), ConfigError,
     "max_iter must be an int >= 1, got '5'"),
]


@pytest.mark.parametrize("make, error, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_import_descend_does_not_import_torch():
    done = _python("import sys, descend, descend.optim, descend.train, descend.cli\n"
                   "print('torch' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_without_torch_the_import_error_says_what_to_install():
    # sys.modules['torch'] = None makes `import torch` fail as if torch were not installed
    done = _python("import sys\nsys.modules['torch'] = None\nimport descend\n"
                   "try:\n    import descend.torch\nexcept ImportError as e:\n    print(e)\n")
    assert done.returncode == 0, done.stderr
    assert "pip install 'descend[torch]'" in done.stdout


@pytest.mark.parametrize("name", ["GD", "Adam", "Subgradient", "LBFGS", "CG"])
def test_signatures_match_the_numpy_engine(name):
    # the same arguments in the same order, kinds and defaults (max_iter, max_grad_norm
    # included), plus process_group; engine= is the one the torch classes make themselves
    ours = inspect.signature(getattr(dt, name))
    numpy_side = inspect.signature(getattr(optim, name))
    assert [p for p in ours.parameters.values() if p.name != "process_group"] == \
        [p for p in numpy_side.parameters.values() if p.name != "engine"]
    assert "process_group" in ours.parameters and "engine" in numpy_side.parameters
