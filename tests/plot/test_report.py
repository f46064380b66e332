"""The report states the run's numbers: each is compared with the History and the first
step of the same seeded run, or with an independent computation; the page is valid HTML5
that references no URL; asking for it changes nothing in the run."""

from __future__ import annotations

import html
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import descend as ds
from descend.cli import main
from descend.data import iterate_batches, spirals
from descend.errors import ConfigError, ConfigTypeError
from descend.plot.report import CRITERIA
from descend.train.stopping import STOP_REASONS

pytest.importorskip("matplotlib")

VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}


class Page(HTMLParser):
    """Tags (checked to nest), tables' cells, attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.doctype = None
        self.tags: list[tuple[str, dict]] = []
        self.tables: list[list[list[str]]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.errors: list[str] = []

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.row = []
            self.tables[-1].append(self.row)
        elif tag in ("td", "th"):
            self.cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th"):
            self.row.append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def span(text: str, name: str) -> float:
    m = re.search(rf'<span id="{name}">([^<]*)</span>', text)
    assert m, name
    return float(m.group(1))


def close(stated: float, value: float) -> bool:
    # the report writes 6 significant digits
    return math.isclose(stated, value, rel_tol=1e-5, abs_tol=1e-12)


DATA = spirals(160, seed=3)
X = DATA.X.astype(np.float32)
Y = DATA.y


def model():
    return ds.nn.Sequential(ds.nn.Linear(2, 8, rng=0), ds.nn.Tanh(), ds.nn.Linear(8, 2, rng=1))


def run(report=None, optimizer="gd", lr="armijo"):
    m = model()
    opt = ds.optim.spec.make_optimizer(optimizer, list(m.parameters()),
                                       ds.optim.spec.parse_step_rule(lr))
    history = ds.train.fit(m, ds.nn.CrossEntropyLoss(), opt, (X, Y), epochs=2, batch_size=40,
                           seed=5, progress=False, report=report)
    return history, opt


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "run.html"
    history, opt = run(path)
    return history, opt, path.read_text(encoding="utf-8")


def test_the_report_changes_nothing_in_the_run(reported):
    history, _, _ = reported
    plain, _ = run()
    for column in ("loss", "lr", "grad_norm", "evaluations", "step_norm"):
        assert getattr(history, column) == getattr(plain, column), column
    assert str(history.stop_reason) == str(plain.stop_reason)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, lr, batch", [
    ("lbfgs", "wolfe", None), ("adam", "0.01", 40), ("recommended", None, 40),
    ("gd", "polyak", 40), ("cg", "wolfe", None)])
def test_the_report_changes_no_optimizers_run(optimizer, lr, batch, tmp_path):
    # with dropout: the walked step's random draws are given back too
    def one(report):
        m = ds.nn.Sequential(ds.nn.Linear(2, 8, rng=0), ds.nn.Tanh(), ds.nn.Dropout(0.2),
                             ds.nn.Linear(8, 2, rng=1))
        if lr is None:
            opt = ds.optim.recommended(m.parameters())
        else:
            opt = ds.optim.spec.make_optimizer(optimizer, list(m.parameters()),
                                               ds.optim.spec.parse_step_rule(lr))
        return ds.train.fit(m, ds.nn.CrossEntropyLoss(), opt, (X, Y), epochs=2,
                            batch_size=batch, seed=5, progress=False, report=report)

    a, b = one(None), one(tmp_path / "r.html")
    assert (a.loss, a.lr, a.evaluations) == (b.loss, b.lr, b.evaluations)
    assert (tmp_path / "r.html").stat().st_size > 0


def test_the_page_is_valid_html5_without_urls(reported):
    _, _, text = reported
    page = parse(text)
    assert page.doctype.lower() == "doctype html"
    assert not page.errors and not page.stack
    assert page.tags[0] == ("html", {"lang": "en"})
    assert ("meta", {"charset": "utf-8"}) in page.tags
    assert re.search(r"<title>[^<]+</title>", text)
    assert not any(t == "script" for t, _ in page.tags)
    assert not re.search(r"https?://", text)
    assert not any(v and re.match(r"\s*(https?:)?//", v) for _, a in page.tags for v in a.values())
    # three figures, each inline
    figures = re.findall(r'<figure id="figure-([a-z-]+)"><svg', text)
    assert figures == ["graph", "line-search", "run"]
    # the run's figure has its four curves; the line search's its trials and step
    run_figure = text[text.index('<figure id="figure-run">'):]
    for key in ("loss", "lr", "evaluations", "grad_norm"):
        assert f'id="run-{key}"' in run_figure, key
    search = text[text.index('<figure id="figure-line-search">'):text.index(
        '<figure id="figure-run">')]
    assert 'id="trials"' in search and 'id="accepted"' in search


def test_the_first_step_is_the_runs_first_step(reported):
    history, _, text = reported
    assert close(span(text, "loss0"), history.loss[0])
    assert close(span(text, "lr0"), history.lr[0])
    assert span(text, "evaluations0") == history.evaluations[0]
    assert close(span(text, "grad-norm0"), history.grad_norm[0])
    assert close(span(text, "step-norm0"), history.step_norm[0])
    # GD: the direction is -g, so ||d|| = ||g|| and the slope g . d = -||g||^2
    assert close(span(text, "direction-norm0"), history.grad_norm[0])
    assert math.isclose(span(text, "slope0"), -history.grad_norm[0] ** 2, rel_tol=1e-4)
    assert math.isclose(span(text, "cosine0"), 1.0, rel_tol=1e-4)
    page = parse(text)
    per_parameter = next(t for t in page.tables if t[0][0] == "parameter"
                         and t[0][1].startswith("direction norm"))
    for row in per_parameter[1:]:  # d = -g, parameter by parameter
        assert math.isclose(float(row[1]), float(row[2]), rel_tol=1e-4), row
    # Armijo's trials: the last accepted one is alpha
    trials = next(t for t in page.tables if t[0] == ["trial", "alpha", "phi(alpha)",
                                                       "phi'(alpha)"])
    assert len(trials) - 1 == history.evaluations[0] - 1  # the start is not a trial
    assert close(float(trials[-1][1]), history.lr[0])
    assert close(float(trials[-1][2]), span(text, "new-loss0"))
    # the graph's root (the loss node) states the first loss
    graph = text[text.index('<figure id="figure-graph">'):text.index("</figure>")]
    values = re.findall(r"value = ([-\d.e+]+)</text>", graph)
    assert values and math.isclose(float(values[-1]), history.loss[0], rel_tol=1e-3)


def test_the_batch_and_gradients_are_independently_recomputed(reported):
    _, _, text = reported
    xb, yb = next(iter(iterate_batches(X, Y, 40, shuffle=True, rng=np.random.default_rng(5))))
    page = parse(text)
    classes = next(t for t in page.tables if t[0] == ["class", "samples in the first batch"])
    values, counts = np.unique(yb, return_counts=True)
    assert [(int(c), int(n)) for c, n in classes[1:]] == list(zip(values.tolist(),
                                                                  counts.tolist()))
    # the gradient at the initial parameters, by a fresh backward pass on that batch
    m = model()
    ds.nn.CrossEntropyLoss()(m(ds.tensor(xb)), yb).backward()
    table = next(t for t in page.tables if t[0] == ["parameter", "shape", "gradient norm"])
    got = {row[0]: float(row[2]) for row in table[1:]}
    for name, p in m.named_parameters():
        assert math.isclose(got[name], float(np.linalg.norm(p.grad)), rel_tol=1e-4), name


def test_the_whole_run_and_the_stop_reason_are_the_historys(reported):
    history, _, text = reported
    page = parse(text)
    steps = next(t for t in page.tables if t[0][:2] == ["step", "loss"])
    assert len(steps) - 1 == min(history.steps, 15)
    for row in steps[1:]:
        i = int(row[0])
        assert close(float(row[1]), history.loss[i])
        assert close(float(row[2]), history.lr[i])
        assert int(row[3]) == history.evaluations[i]
        assert close(float(row[4]), history.grad_norm[i])
    caption = re.search(r"(\d+) steps: the loss from (\S+) to (\S+), (\d+) forward", text)
    assert int(caption.group(1)) == history.steps
    assert close(float(caption.group(2)), history.loss[0])
    assert close(float(caption.group(3)), history.loss[-1])
    assert int(caption.group(4)) == sum(history.evaluations)
    stop = re.search(r'<p id="stop-reason">([^<]*)</p>', text).group(1)
    assert stop == str(history.stop_reason)
    meaning = re.search(r'<p id="stop-meaning">([^<]*)</p>', text).group(1)
    assert html.unescape(meaning) == CRITERIA[history.stop_reason.criterion]
    # every section names its concept
    for key in ("data", "model", "backprop", "direction", "search", "update", "run", "stop"):
        assert f'<section id="{key}">' in text


def test_every_stop_criterion_is_explained():
    assert set(CRITERIA) == set(STOP_REASONS)


def test_bad_report_arguments_are_refused(tmp_path):
    m = model()
    opt = ds.optim.GD(m.parameters(), lr=0.1)
    lf = ds.nn.CrossEntropyLoss()
    with pytest.raises(ConfigError, match="HTML file"):
        ds.train.fit(m, lf, opt, (X, Y), epochs=1, progress=False, report=tmp_path / "r.txt")
    with pytest.raises(ConfigTypeError, match="report must be a path"):
        ds.train.fit(m, lf, opt, (X, Y), epochs=1, progress=False, report=3)
    with pytest.raises(ConfigError, match="resume"):
        ds.train.fit(m, lf, opt, (X, Y), epochs=1, progress=False, report=tmp_path / "r.html",
                     resume=tmp_path / "c.ckpt")
    batches = iter([(X[:10], Y[:10])])
    with pytest.raises(ConfigError, match="iterator of batches"):
        ds.train.fit(m, lf, opt, batches, epochs=1, progress=False, report=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("argv, words", [
    (["explain", "--report", "out.txt"], "HTML file"),
    (["explain", "--report", "missing/out.html"], "does not exist"),
    (["train", "--report", "r.html", "--resume", "c.ckpt"], "resume"),
])
def test_the_command_line_refuses_bad_reports(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


@pytest.mark.slow
def test_descend_explain_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "--quiet", "--max-steps", "4", "--samples", "100",
                 "--history", "h.csv"]) == 0
    out = capsys.readouterr().out
    assert "report: descend-explain.html" in out
    text = (tmp_path / "descend-explain.html").read_text(encoding="utf-8")
    rows = (tmp_path / "h.csv").read_text().splitlines()[1:]
    assert len(rows) == 4
    assert close(span(text, "loss0"), float(rows[0].split(",")[1]))
    assert close(span(text, "lr0"), float(rows[0].split(",")[2]))


def table(page, head):
    return next(t for t in page.tables if t[0] == head)


def test_every_other_table_is_the_runs(reported):
    history, _, text = reported
    page = parse(text)
    xb, yb = next(iter(iterate_batches(X, Y, 40, shuffle=True, rng=np.random.default_rng(5))))
    m = model()
    # the forward values, recomputed in float64 at the initial parameters
    W1, b1 = (p.data.astype(np.float64) for p in m[0].parameters())
    W2, b2 = (p.data.astype(np.float64) for p in m[2].parameters())
    pre = xb.astype(np.float64) @ W1.T + b1
    h = np.tanh(pre)
    z = h @ W2.T + b2
    ce = np.log(np.exp(z).sum(1)) - z[np.arange(len(yb)), yb]
    want = {"input": xb, "0": pre, "1": h, "2": z, "cross_entropy": ce, "mean": ce.mean()}
    rows = table(page, ["node", "operation", "shape", "mean", "min", "max"])[1:]
    assert [r[0] for r in rows] == list(want)
    for name, _, shape, mean, lo, hi in rows:
        w = np.asarray(want[name])
        assert shape == str(w.shape)
        for stated, value in ((mean, w.mean()), (lo, w.min()), (hi, w.max())):
            assert math.isclose(float(stated), value, rel_tol=1e-4, abs_tol=1e-6), name
    # the update, parameter by parameter: alpha ||g_i|| for gradient descent
    grads = {r[0]: float(r[2]) for r in table(page, ["parameter", "shape",
                                                      "gradient norm"])[1:]}
    for name, moved in table(page, ["parameter", "update norm"])[1:]:
        assert math.isclose(float(moved), history.lr[0] * grads[name], rel_tol=1e-4), name
    # the model: each parameter's entries, each module's count
    entries = {r[0]: int(r[2]) for r in table(page, ["parameter", "shape", "entries"])[1:]}
    assert entries == {n: p.size for n, p in m.named_parameters()}
    counts = {r[0]: int(r[2]) for r in table(page, ["module", "class", "parameters"])[1:]}
    assert counts == {"(model)": 2 * 8 + 8 + 8 * 2 + 2, "0": 24, "1": 0, "2": 18}
    # the epochs and the stop reason's fields
    epochs = table(page, ["epoch", "train loss", "validation loss", "validation accuracy"])
    assert [(int(r[0]), float(r[1])) for r in epochs[1:]] == [
        (e.epoch, pytest.approx(e.train_loss, rel=1e-5)) for e in history.epochs[-5:]]
    reason = history.stop_reason
    fields = {r[0]: r[1] for r in page.tables[-1][1:]}
    assert fields["criterion"] == reason.criterion
    assert int(fields["step"]) == reason.step and int(fields["epoch"]) == reason.epoch
    assert float(fields["value"]) == pytest.approx(reason.value)


def test_the_contents_link_every_section(reported):
    _, _, text = reported
    page = parse(text)
    links = [a["href"] for tag, a in page.tags if tag == "a"]
    sections = [a["id"] for tag, a in page.tags if tag == "section"]
    assert links == [f"#{s}" for s in sections] and len(sections) == 8
