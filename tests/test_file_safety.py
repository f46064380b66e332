"""Writing files never destroys anything: atomic replacement for regular files only, devices,
FIFOs and standard output written in place, other targets refused by name, existing
checkpoints kept, and faults (a kill, a file-size limit, a read-only folder) injected in
subprocesses leave the previous checkpoint intact."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend._output import remove_stale_temporaries
from descend.errors import CheckpointError, OutputError
from descend.train import History
from descend.train.checkpoint import check_checkpoint_target, load_checkpoint, save_checkpoint

ROOT = os.geteuid() == 0


def _history() -> History:
    h = History()
    for i in range(3):
        h.record_step(1.0 / (i + 1), 0.1, 0.5, 2, 0.01)
    return h


CSV_HEADER = b"step,loss,lr,grad_norm,evaluations,step_norm"

# Each writer: (name, write(path), check of the bytes written, error class on failure)
WRITERS: dict[str, tuple[Callable[[Path | str], object], Callable[[bytes], bool], type]] = {
    "csv": (lambda p: _history().to_csv(p), lambda b: b.startswith(CSV_HEADER), OutputError),
    "plot": (lambda p: _history().plot(p), lambda b: b.startswith(b"\x89PNG"), OutputError),
    "checkpoint": (lambda p: save_checkpoint(p, {"n": 1, "x": np.arange(3.0)}),
                   lambda b: b.startswith(b"PK"), CheckpointError),
}


def _read_fifo(path: Path) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []

    def reader() -> None:
        with open(path, "rb") as fh:
            got.append(fh.read())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return t, got


# --------------------------------------------------------------- non-regular targets
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_fifo_is_written_in_place_and_stays_a_fifo(tmp_path, writer):
    write, looks_right, _ = WRITERS[writer]
    fifo = tmp_path / ("out.png" if writer == "plot" else "out")
    os.mkfifo(fifo)
    t, got = _read_fifo(fifo)
    write(fifo)
    t.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # not replaced by a regular file
    assert got and looks_right(got[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == [fifo.name]


@pytest.mark.skipif(not ROOT, reason="creating a device node needs root")
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_character_device_is_written_in_place_not_replaced(tmp_path, writer):
    # A private copy of /dev/null (char 1:3): what a root run of
    # `descend train --history /dev/null` used to replace by a regular file.
    null = tmp_path / "null.png"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    WRITERS[writer][0](null)
    st = os.stat(null)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.png"]


@pytest.mark.parametrize("writer", ["csv", "plot"])
def test_dash_writes_standard_output(capfdbinary, writer):
    write, looks_right, _ = WRITERS[writer]
    assert write("-") == "-"
    out, _ = capfdbinary.readouterr()
    assert looks_right(out)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_directory_target_is_refused_by_name(tmp_path, writer):
    write, _, error = WRITERS[writer]
    folder = tmp_path / "out.png"
    folder.mkdir()
    with pytest.raises(error, match=r"out\.png is a directory"):
        write(folder)
    assert folder.is_dir() and list(folder.iterdir()) == []


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_symlink_to_a_file_keeps_the_link_and_replaces_the_file(tmp_path, writer):
    write, looks_right, _ = WRITERS[writer]
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    write(link)
    assert link.is_symlink() and looks_right(real.read_bytes())


def test_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("old")
    path.chmod(0o640)
    _history().to_csv(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes().startswith(CSV_HEADER)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_full_device_gives_a_clear_error(writer):
    write, _, error = WRITERS[writer]
    with pytest.raises(error, match="no space left on device"):
        write("/dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_file_name_too_long_is_one_clear_error(tmp_path, writer):
    write, _, error = WRITERS[writer]
    with pytest.raises(error, match="file name too long"):
        write(tmp_path / ("x" * 300 + ".png"))


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(OutputError, match=r"folder .*nowhere does not exist"):
        _history().to_csv(tmp_path / "nowhere" / "h.csv")


# --------------------------------------------------------------- existing checkpoints
def test_fresh_run_over_an_existing_checkpoint_is_refused(tmp_path):
    ckpt = tmp_path / "good.npz"
    save_checkpoint(ckpt, {"n": 1})
    with pytest.raises(CheckpointError, match=r"already exists.*--resume.*--overwrite"):
        check_checkpoint_target(ckpt)
    with pytest.raises(CheckpointError, match="already exists"):
        check_checkpoint_target(ckpt, resume=tmp_path / "other.npz")
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(ckpt, {"n": 2}, overwrite=False)
    assert load_checkpoint(ckpt, training=False)["n"] == 1
    # continuing the run it holds, or replacing it on purpose, is allowed
    assert check_checkpoint_target(ckpt, resume=ckpt) == ckpt
    assert check_checkpoint_target(ckpt, overwrite=True) == ckpt
    assert check_checkpoint_target(tmp_path / "new.npz") == tmp_path / "new.npz"
    with pytest.raises(TypeError, match="overwrite"):
        check_checkpoint_target(ckpt, overwrite="yes")


def _small_fit(**kwargs):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = ds.nn.Sequential(ds.nn.Linear(3, 4, rng=1), ds.nn.ReLU(), ds.nn.Linear(4, 2, rng=2))
    opt = ds.optim.GD(model.parameters(), lr=0.1, momentum=0.5)
    return ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), batch_size=10,
                        progress=False, **kwargs)


def test_fit_refuses_to_overwrite_an_existing_checkpoint(tmp_path):
    ckpt = tmp_path / "good.npz"
    _small_fit(epochs=1, checkpoint=ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match="resume"):
        _small_fit(epochs=2, checkpoint=ckpt)
    assert ckpt.read_bytes() == before
    _small_fit(epochs=2, checkpoint=ckpt, resume=ckpt)  # continuing the run may write there
    _small_fit(epochs=1, checkpoint=ckpt, overwrite=True)  # so may a run told to replace it


# --------------------------------------------------------------- fault injection
def _child(code: str, *, preexec: Callable[[], None] | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec)


def _only_checkpoint_left(folder: Path, name: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [name]


def test_sigkill_in_the_middle_of_a_checkpoint_write(tmp_path):
    ckpt = tmp_path / "run.npz"
    _small_fit(epochs=1, checkpoint=ckpt)
    before = ckpt.read_bytes()
    # The child resumes the run and is killed while the epoch-2 checkpoint is half written.
    out = _child(f"""
        import os, signal
        import numpy as np
        import descend as ds

        def half_then_die(fh, **arrays):
            fh.write(b"PK\\x03\\x04" + b"half-written" * 1000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        np.savez = half_then_die
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 3)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.int64)
        model = ds.nn.Sequential(ds.nn.Linear(3, 4, rng=1), ds.nn.ReLU(),
                                 ds.nn.Linear(4, 2, rng=2))
        opt = ds.optim.GD(model.parameters(), lr=0.1, momentum=0.5)
        ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), batch_size=10, epochs=2,
                     progress=False, checkpoint={str(ckpt)!r}, resume={str(ckpt)!r})
    """)
    assert out.returncode == -signal.SIGKILL, out.stderr
    assert ckpt.read_bytes() == before
    left = [p.name for p in tmp_path.iterdir() if p.name != ckpt.name]
    assert len(left) == 1 and left[0].startswith(".run.npz.")  # the killed writer's temp
    state = load_checkpoint(ckpt)  # intact, valid, and the dead writer's temp is swept
    assert state["epoch"] == 1
    _only_checkpoint_left(tmp_path, "run.npz")
    # and the run continues from it
    history = _small_fit(epochs=2, checkpoint=ckpt, resume=ckpt)
    assert len(history.epochs) == 2 and load_checkpoint(ckpt)["epoch"] == 2


def test_temporaries_of_live_writers_are_kept(tmp_path):
    target = tmp_path / "c.npz"
    mine = tmp_path / f".c.npz.{os.getppid()}.0123456789ab.tmp"  # a live process's
    dead = tmp_path / ".c.npz.999999999.0123456789ab.tmp"
    other = tmp_path / ".d.npz.999999999.0123456789ab.tmp"
    for p in (mine, dead, other):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(target) == [dead]
    assert mine.exists() and other.exists()


def _limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_file_size_limit_during_a_checkpoint_write(tmp_path):
    ckpt = tmp_path / "c.npz"
    save_checkpoint(ckpt, {"n": 1})
    before = ckpt.read_bytes()
    out = _child(f"""
        import sys
        import numpy as np
        from descend.errors import CheckpointError
        from descend.train.checkpoint import save_checkpoint
        try:
            save_checkpoint({str(ckpt)!r}, {{"n": 2, "x": np.ones(1_000_000)}})
        except CheckpointError as exc:
            print(exc, file=sys.stderr)
            sys.exit(3)
    """, preexec=_limit_file_size(64 * 1024))
    assert out.returncode == 3, out.stderr
    assert "file size limit exceeded" in out.stderr and "Traceback" not in out.stderr
    assert ckpt.read_bytes() == before
    assert load_checkpoint(ckpt, training=False)["n"] == 1
    _only_checkpoint_left(tmp_path, "c.npz")


def test_file_size_limit_in_the_command_line(tmp_path):
    ckpt = tmp_path / "c.npz"
    args = ["train", "--data", "spirals", "--samples", "200", "--hidden", "64,64",
            "--epochs", "1", "--quiet", "--checkpoint", str(ckpt)]
    out = subprocess.run([sys.executable, "-m", "descend", *args], capture_output=True,
                         text=True, timeout=120, preexec_fn=_limit_file_size(8 * 1024))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "file size limit exceeded" in lines[0], out.stderr
    assert list(tmp_path.iterdir()) == []


def _make_read_only(folder: Path) -> Callable[[], None]:
    """Make ``folder`` refuse new files; returns the undo. As root, permission bits do not
    stop a write, so the folder is made immutable (chattr +i) instead."""
    if not ROOT:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    try:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    except OSError as exc:
        pytest.skip(f"running as root, where a read-only mode does not stop writes, and "
                    f"chattr is not available to make the folder immutable ({exc})")
    if done.returncode != 0:
        pytest.skip("running as root, where a read-only mode does not stop writes, and this "
                    f"file system cannot make the folder immutable: {done.stderr.strip()}")
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    ckpt = folder / "c.npz"
    save_checkpoint(ckpt, {"n": 1})
    before = ckpt.read_bytes()
    undo = _make_read_only(folder)
    try:
        out = _child(f"""
            import sys
            from descend.errors import CheckpointError
            from descend.train.checkpoint import save_checkpoint
            try:
                save_checkpoint({str(ckpt)!r}, {{"n": 2}})
            except CheckpointError as exc:
                print(exc, file=sys.stderr)
                sys.exit(3)
        """)
    finally:
        undo()
    assert out.returncode == 3, out.stderr
    assert "permission denied" in out.stderr and str(ckpt) in out.stderr
    assert ckpt.read_bytes() == before
    assert load_checkpoint(ckpt, training=False)["n"] == 1
    _only_checkpoint_left(folder, "c.npz")


# --------------------------------------------------------------- the command line
def cli(*args: str, timeout: float = 120, **kw):
    return subprocess.run([sys.executable, "-m", "descend", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


TINY = ("train", "--data", "spirals", "--samples", "120", "--hidden", "8", "--epochs", "1",
        "--quiet")


def test_cli_refuses_a_fresh_run_over_an_existing_checkpoint(tmp_path):
    ckpt = tmp_path / "good.npz"
    assert cli(*TINY, "--checkpoint", str(ckpt)).returncode == 0
    before = ckpt.read_bytes()
    out = cli(*TINY, "--checkpoint", str(ckpt))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--resume" in lines[0] and "--overwrite" in lines[0]
    assert ckpt.read_bytes() == before
    out = cli(*TINY, "--checkpoint", str(ckpt), "--overwrite", "--seed", "5")
    assert out.returncode == 0, out.stderr
    assert load_checkpoint(ckpt)["seed"] == 5


def test_cli_history_to_dev_stdout_and_dash(tmp_path):
    for target in ("/dev/stdout", "-"):
        out = cli(*TINY, "--history", target)
        assert out.returncode == 0, out.stderr
        assert "step,loss,lr,grad_norm" in out.stdout


def test_cli_file_name_too_long_is_one_line(tmp_path):
    long = str(tmp_path / ("h" * 300 + ".csv"))
    for flag in ("--history", "--checkpoint", "--plot"):
        out = cli(*TINY, flag, long[:-4] + (".png" if flag == "--plot" else ".csv"))
        assert out.returncode == 2 and "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "file name too long" in lines[0], (flag, out.stderr)


BROKEN_PIPE_LINE = "descend: standard output was closed (broken pipe); stopped"


def test_cli_broken_pipe_is_one_line_without_traceback():
    # `descend train ... | head -1`: the reader takes one line and goes away while training
    # runs (a longer run, so that the reader is gone before the final report is written).
    args = ["train", "--data", "spirals", "--samples", "1500", "--hidden", "32", "--epochs",
            "4", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "descend", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert first.startswith(b"data:")
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.strip().splitlines() == [BROKEN_PIPE_LINE]
    assert proc.returncode == 128 + signal.SIGPIPE


def test_cli_reader_gone_before_the_first_line():
    # `descend train ... | true`: the pipe has no reader from the start.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "descend", *TINY], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert err.strip().splitlines() == [BROKEN_PIPE_LINE], err
    assert proc.returncode == 128 + signal.SIGPIPE
