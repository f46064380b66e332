"""Make the pictures of docs/see-the-method.md by running the page's own code.

    .venv/bin/python docs/make_gallery.py           # writes docs/img/*.svg|png, docs/*.html
    .venv/bin/python docs/make_gallery.py --check   # exit 1 when a committed file is stale

It runs docs/make_gallery_search.py's entries too (the line search and the paths), so one
command makes the whole page.

The gallery is a list of :class:`Entry`: what makes the files (a code block of a page, or
any function writing into the folder it is given) and where each file lives under docs/.
``--check`` makes every entry again in a scratch folder and compares what the files say
with the committed ones: the ids of drawn nodes and edges, every text and number in
them (numbers to a relative 1e-3: rounding may differ across machines), a PNG's size, and
never pixels.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PAGE = DOCS / "see-the-method.md"


@dataclass
class Entry:
    """One picture (or report) of the gallery.

    ``make(folder)`` writes the files into ``folder``; ``files`` maps each file it writes
    to its place under docs/.
    """

    name: str
    make: Callable[[Path], None]
    files: dict[str, str]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def page_blocks(page: Path, upto: int) -> Callable[[Path], None]:
    """Run a page's first ``upto`` + 1 Python blocks (later ones continue earlier ones) in
    ``folder``, as a reader would."""

    def make(folder: Path) -> None:
        code = "\n\n".join(python_blocks(page.read_text(encoding="utf-8"))[:upto + 1])
        with _inside(folder), contextlib.redirect_stdout(None):
            exec(compile(code, str(page), "exec"), {"__name__": "__gallery__"})

    return make


@contextlib.contextmanager
def _inside(folder: Path):
    here = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


ENTRIES: list[Entry] = [
    Entry("mlp-graph", page_blocks(PAGE, 0),
          {"mlp-graph.svg": "img/mlp-graph.svg", "mlp-graph.png": "img/mlp-graph.png",
           "mlp-graph-modules.svg": "img/mlp-graph-modules.svg"}),
    Entry("explain-report", page_blocks(PAGE, 1),
          {"report.html": "see-the-method-report.html"}),
]


# ------------------------------------------------------------------------------ facts
class _Facts(HTMLParser):
    """The ids of drawn elements and every piece of text, of an SVG or HTML file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.tokens: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("style", "defs", "clippath"):
            self.skip += 1
        ident = dict(attrs).get("id")
        if ident and re.match(r"(node|edge|label|figure|loss|lr|evaluations|stop)", ident):
            self.ids.append(ident)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "defs", "clippath"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.tokens += re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?|[^\s\d]+", data)


def facts(path: Path) -> tuple:
    """What a file says, for comparing: (kind, ids, tokens) or a PNG's (kind, size)."""
    data = path.read_bytes()
    if path.suffix == ".png":
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            return ("not a PNG",)
        return ("png", struct.unpack(">II", data[16:24]))
    parser = _Facts()
    parser.feed(data.decode("utf-8"))
    return (path.suffix, parser.ids, parser.tokens)


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def same_facts(a: tuple, b: tuple) -> bool:
    """Equal ids and texts, numbers to a relative 1e-3."""
    if a[0] != b[0] or len(a) != len(b) or a[0] == "png":
        return a == b
    if a[1] != b[1] or len(a[2]) != len(b[2]):
        return False
    for x, y in zip(a[2], b[2]):
        nx, ny = _number(x), _number(y)
        if nx is None or ny is None:
            if x != y:
                return False
        elif not math.isclose(nx, ny, rel_tol=1e-3, abs_tol=1e-6):
            return False
    return True


# ------------------------------------------------------------------------------ running
def make(entry: Entry, folder: Path) -> None:
    entry.make(folder)
    missing = [f for f in entry.files if not (folder / f).exists()]
    if missing:
        raise RuntimeError(f"gallery entry {entry.name} did not write {', '.join(missing)}")


def stale(entries: list[Entry] | None = None) -> list[str]:
    """The entries whose committed files differ from what they make now."""
    out = []
    for entry in ENTRIES if entries is None else entries:
        with tempfile.TemporaryDirectory() as scratch:
            make(entry, Path(scratch))
            for produced, place in entry.files.items():
                committed = DOCS / place
                if not committed.exists() or not same_facts(facts(Path(scratch) / produced),
                                                             facts(committed)):
                    out.append(f"{entry.name}: {place}")
    return out


def write(entries: list[Entry] | None = None) -> None:
    for entry in ENTRIES if entries is None else entries:
        with tempfile.TemporaryDirectory() as scratch:
            make(entry, Path(scratch))
            for produced, place in entry.files.items():
                (DOCS / place).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(scratch) / produced, DOCS / place)
                print(f"wrote docs/{place}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a committed file differs from what its code makes")
    args = parser.parse_args(argv)
    # the line-search and path pictures: their own entries, kept by their numbers
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import make_gallery_search

    searches = make_gallery_search.main(["--check"] if args.check else [])
    if args.check:
        out = stale()
        for line in out:
            print(f"stale: {line}", file=sys.stderr)
        return 1 if out or searches else 0
    write()
    return searches


if __name__ == "__main__":
    sys.exit(main())
