"""Names the docs use must be names the code has: stop reasons, and the flags
``descend train --engine torch`` refuses.

The docs mark such lists (``<!-- stop-reasons -->...<!-- /stop-reasons -->``,
``<!-- torch-refuses -->...<!-- /torch-refuses -->``); the tables of ``descend compare``
runs have a ``stop`` column; prose says "reason `name`". Each is read here and compared
with the code, so a renamed criterion or a newly supported flag fails a test until the docs
follow.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from descend.cli import build_parser, main
from descend.train.stopping import STOP_REASONS

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def marked(text: str, name: str) -> list[str]:
    """The contents of every ``<!-- name -->...<!-- /name -->`` region of ``text``."""
    return re.findall(rf"<!-- {name} -->(.*?)<!-- /{name} -->", text, flags=re.S)


def backticked(region: str) -> list[str]:
    """The `code` spans of a region that are names, not flags (``--tol``)."""
    return [t for t in re.findall(r"`([^`]+)`", region) if not t.startswith("-")]


def stop_column(text: str) -> list[tuple[str, str]]:
    """(table header, value) for every row of the text tables whose last column is
    ``stop`` (the tables ``descend compare`` prints)."""
    found = []
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        lines = block.splitlines()
        if not lines or lines[0].split()[-1:] != ["stop"]:
            continue
        found += [(lines[0], line.split()[-1]) for line in lines[2:] if line.strip()]
    return found


def test_the_docs_have_stop_reason_lists_to_check():
    assert any(marked(p.read_text(encoding="utf-8"), "stop-reasons") for p in PAGES)
    assert any(stop_column(p.read_text(encoding="utf-8")) for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_stop_reason_the_docs_name_is_one_the_code_has(page: Path):
    text = page.read_text(encoding="utf-8")
    named = [n for region in marked(text, "stop-reasons") for n in backticked(region)]
    named += re.findall(r"\breason `([^`]+)`", text)
    named += [value for _, value in stop_column(text)]
    unknown = sorted({n for n in named if n not in STOP_REASONS})
    assert not unknown, (f"{page.name} names stop reasons the code does not have: {unknown}; "
                         f"the code's are {STOP_REASONS}")


def test_an_old_stop_reason_name_would_be_caught():
    old = "why: <!-- stop-reasons -->`tol`, `max steps` or `diverged`<!-- /stop-reasons -->"
    names = backticked(marked(old, "stop-reasons")[0])
    assert [n for n in names if n not in STOP_REASONS] == ["tol", "max steps"]


def _train_flags() -> dict[str, str]:
    """``descend train``'s options: option string -> destination."""
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    return {a.option_strings[-1]: a.dest for a in train._actions
            if a.option_strings and a.dest != "help"}


def test_what_pytorch_md_says_torch_refuses_is_what_the_cli_refuses():
    from descend.torch.cli import unsupported_flags

    regions = marked((DOCS / "pytorch.md").read_text(encoding="utf-8"), "torch-refuses")
    assert len(regions) == 1, "docs/pytorch.md lists the refused flags once, between markers"
    documented = set(re.findall(r"`(--[a-z-]+)`", regions[0]))
    flags = _train_flags()
    assert documented <= set(flags), documented - set(flags)
    # the CLI's refusals, flag by flag: each option given a value other than its default
    defaults = build_parser().parse_args(["train"])
    refused = set()
    for option, dest in flags.items():
        args = argparse.Namespace(**vars(defaults))
        setattr(args, dest, object())  # differs from any default
        if unsupported_flags(args):
            refused.add(option)
    assert documented == refused, (f"docs/pytorch.md says --engine torch refuses "
                                   f"{sorted(documented)}, the CLI refuses {sorted(refused)}")


@pytest.mark.parametrize("flags", [["--checkpoint-every", "3"], ["--overwrite"]],
                         ids=["checkpoint-every", "overwrite"])
def test_a_refused_flag_is_named_on_one_line(flags, capsys):
    code = main(["train", "--engine", "torch", "--epochs", "1", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"{flags[0]} not supported with --engine torch" in err[0]
