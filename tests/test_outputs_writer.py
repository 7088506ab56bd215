"""Every file any command writes goes through the one writer: nothing in the way is ever replaced or written through.

The cases are generated from :data:`accord.outputs.COMMAND_OUTPUTS` (every command x every output it lists)
x every hostile kind of node (a symlink to a user's file, a dangling symlink, a FIFO, a socket, a device, a
folder, a user's own file without ``--overwrite``). Each case plants the node, runs the command in-process
(an alarm ends a hang), and checks the exit code, that the error is one line naming the path, and that the
planted node (and a symlink's target) is exactly as it was. A new output added to the list is tested here
without a new test; a command without a way to run it here fails :func:`test_every_command_has_a_scenario`.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from tiny_runs import QUIET, TINY, tiny_config, train_args

from accord.cli import main
from accord.engine import fit
from accord.outputs import COMMAND_OUTPUTS, Output

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_GRID = ROOT / "docs/results/fashion-mnist/grid"
COMMITTED_CELL = COMMITTED_GRID / "FashionMNIST-ResNet8-standard/seed0"
MODEL = "FashionMNIST-ResNet8"
KINDS = ("symlink", "dangling symlink", "fifo", "socket", "device", "folder", "user file")


@pytest.fixture(scope="module")
def run(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("writer") / "run"
    fit(tiny_config(fmnist_dir), out, log=QUIET)
    return out


@dataclass
class Scene:
    """What a command runs on: its argv and the folder each ``Output.base`` names."""

    argv: list[str]
    bases: dict[str, Path]


def _sets() -> list[str]:
    return [f"--set={k}={v}" for k, v in TINY.items() if k not in ("epochs", "train_subset")]


def scene(command: str, tmp: Path, run: Path, data: Path) -> Scene:
    """Set up ``command``'s inputs under ``tmp``; its outputs are not there yet."""
    if command == "train":
        out = tmp / "run"
        out.mkdir()
        return Scene([*train_args(data, out), "--set=tensorboard=true"], {"run": out})
    if command == "compare":
        out = tmp / "compare"
        (out / f"{MODEL}-standard").mkdir(parents=True)
        argv = ["compare", "--config", f"{MODEL}-standard", "--methods", "ce", "--data-dir", str(data), "--epochs",
                "1", "--train-subset", "64", *_sets(), "--set=tensorboard=true", "--out", str(out)]  # fmt: skip
        return Scene(argv, {"run": out / f"{MODEL}-standard"})
    if command == "grid":
        out = tmp / "grid"
        cell = out / f"{MODEL}-standard/seed0"
        cell.mkdir(parents=True)
        argv = ["grid", "--models", MODEL, "--augs", "standard", "--methods", "ce", "--seeds", "1", "--epochs", "1",
                "--train-subset", "64", f"--set=data_dir={data}", *_sets(), "--out", str(out)]  # fmt: skip
        return Scene(argv, {"grid": out, "cell": cell, "run": cell})
    if command == "report":
        out = tmp / "report"
        for path in [COMMITTED_GRID / "grid.json", *COMMITTED_GRID.glob("*/seed*/summary.json")]:
            copy = out / path.relative_to(COMMITTED_GRID)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        return Scene(["report", str(out)], {"report": out})
    if command == "plot":
        out = Path(shutil.copytree(COMMITTED_CELL, tmp / "cell"))
        return Scene(["plot", str(out)], {"plot": out})
    if command == "eval":
        out = tmp / "ckpt"
        out.mkdir()
        shutil.copyfile(run / "checkpoint-last.pt", out / "model.pt")
        argv = ["eval", "--checkpoint", str(out / "model.pt"), "--data-dir", str(data), "--corruptions", "jpeg",
                "--limit", "4"]  # fmt: skip
        return Scene(argv, {"checkpoint": out})
    if command == "export":
        return Scene(["export", str(run), "--out", "{out}"], {"out": tmp})
    if command == "import-agmax":
        return Scene(["import-agmax", str(tmp / "src.pth"), "--arch", "resnet50", "--out", "{out}"], {"out": tmp})
    if command == "bench":
        return Scene(["bench"], {"cwd": tmp})  # its default output, in the working folder
    if command == "predict":
        image = tmp / "images" / "shoe.png"
        image.parent.mkdir()
        Image.new("L", (28, 28), 128).save(image)
        return Scene(["predict", str(run), str(image.parent), "--out", "{out}"], {"out": tmp})
    raise KeyError(command)


SCENE_COMMANDS = ("train", "compare", "grid", "report", "plot", "eval", "export", "import-agmax", "bench", "predict")


def test_every_command_has_a_scenario():
    assert set(COMMAND_OUTPUTS) == set(SCENE_COMMANDS)


def kinds_for(output: Output) -> list[str]:
    """The hostile kinds of ``output``: a folder output may be a folder; a log accord adds to may be a file."""
    return [k for k in KINDS if not (k == "folder" and output.folder) and not (k == "user file" and output.append)]


CASES = [
    pytest.param(command, output, kind, id=f"{command}-{output.name}-{kind}")
    for command, outputs in COMMAND_OUTPUTS.items()
    for output in outputs
    for kind in kinds_for(output)
]


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def plant(path: Path, kind: str, tmp: Path) -> Callable[[], object]:
    """Put a ``kind`` node at ``path``; return a function of its state (and its target's), to compare later."""
    user = tmp / "users-own-file.txt"
    user.write_text("the user's own words")
    if kind == "symlink":
        path.symlink_to(user)
    elif kind == "dangling symlink":
        path.symlink_to(tmp / "not-there-yet")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with _in(path.parent), socket.socket(socket.AF_UNIX) as s:  # a relative name: sun_path is short
            s.bind(path.name)
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    elif kind == "folder":
        path.mkdir()
        (path / "inside.txt").write_text("kept")
    else:  # "user file", "user text": a regular file of the user's
        path.write_text("the user's own file, not accord's")

    def state() -> object:
        st = os.lstat(path)
        inside = sorted((p.name, p.read_text()) for p in path.iterdir()) if stat.S_ISDIR(st.st_mode) else None
        content = path.read_text() if stat.S_ISREG(st.st_mode) else None
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
        return (stat.S_IFMT(st.st_mode), st.st_ino, content, inside, link, user.read_text(),
                (tmp / "not-there-yet").exists())  # fmt: skip

    return state


class Hung(BaseException):
    """A command still running after the alarm: it blocked (a FIFO opened) instead of refusing."""


@pytest.mark.parametrize(("command", "output", "kind"), CASES)
def test_a_hostile_node_at_any_output_is_refused_in_one_line_and_kept(
    command, output, kind, run, fmnist_dir, tmp_path, capsys, monkeypatch
):
    if command == "plot":
        pytest.importorskip("matplotlib")
    if output.folder:
        pytest.importorskip("tensorboard")
    import accord.bench

    monkeypatch.setattr(accord.bench, "run_benchmark", lambda cfg, log: {})  # bench never times anything here
    monkeypatch.setattr(accord.bench, "format_table", lambda result: "")
    work = tmp_path / "work"
    work.mkdir()
    setup = scene(command, work, run, fmnist_dir)
    name = output.name.format(model=MODEL)
    path = setup.bases[output.base] / name
    state = plant(path, kind, tmp_path)
    before = state()
    argv = [a.format(out=path) for a in setup.argv]
    if output.base == "cwd":
        monkeypatch.chdir(setup.bases["cwd"])

    def hang(signum, frame):
        raise Hung

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)
    try:
        code = main(argv)
    except Hung:
        pytest.fail(f"accord {command} blocked on the {kind} at {path}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("accord:")]
    assert code == 2, (code, err)
    assert len(lines) == 1 and name in lines[0], err
    assert state() == before, f"the {kind} at {path} changed"


def test_report_refuses_a_fifo_named_report_md_without_blocking(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    setup = scene("report", tmp_path, tmp_path, tmp_path)
    os.mkfifo(setup.bases["report"] / "report.md")
    signal.alarm(60)  # the default action ends the process: a hang is a failure, not a stuck suite
    try:
        assert main(setup.argv) == 2
    finally:
        signal.alarm(0)
    assert "report.md: is a FIFO" in capsys.readouterr().err


def test_plot_replaces_its_own_figure_but_not_a_users_or_one_edited_since(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    cell = Path(shutil.copytree(COMMITTED_CELL, tmp_path / "cell"))
    assert main(["plot", str(cell)]) == 0
    assert main(["plot", str(cell)]) == 0  # its own curves.png: replaced without --overwrite
    (cell / "curves.png").write_bytes(b"edited by the user")
    assert main(["plot", str(cell)]) == 2
    assert "already exists; use --overwrite" in capsys.readouterr().err
    assert (cell / "curves.png").read_bytes() == b"edited by the user"
    mine = tmp_path / "existing.pdf"
    mine.write_bytes(b"%PDF my paper")
    assert main(["plot", str(cell), "--out", str(mine)]) == 2
    assert mine.read_bytes() == b"%PDF my paper"
    assert main(["plot", str(cell), "--out", str(mine), "--overwrite"]) == 0
    assert mine.read_bytes().startswith(b"%PDF") and mine.read_bytes() != b"%PDF my paper"


def test_bench_keeps_a_users_bench_json_and_the_run_marker(run, tmp_path, monkeypatch, capsys):
    import accord.bench

    monkeypatch.setattr(accord.bench, "run_benchmark", lambda cfg, log: {"ran": True})
    monkeypatch.setattr(accord.bench, "format_table", lambda result: "")
    monkeypatch.chdir(tmp_path)
    Path("bench.json").write_text("my numbers")
    assert main(["bench"]) == 2
    assert Path("bench.json").read_text() == "my numbers"
    marker = run / ".accord-run.json"
    before = marker.read_bytes()
    assert main(["bench", "--out", str(marker), "--overwrite"]) == 2
    assert "is a file of the run" in capsys.readouterr().err
    assert marker.read_bytes() == before
    Path("bench.json").unlink()
    assert main(["bench"]) == 0 and main(["bench"]) == 0  # its own bench.json is replaced


def test_outputs_have_the_users_umask(run, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["export", str(run), "--out", str(tmp_path / "m.safetensors")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.safetensors").st_mode) == 0o644


def test_a_regrid_never_replaces_a_cells_best_checkpoint(run, fmnist_dir, tmp_path, capsys):
    setup = scene("grid", tmp_path, run, fmnist_dir)
    cell = setup.bases["cell"]
    for name in (".accord-run.json", "config.yaml", "checkpoint-best.pt"):
        shutil.copyfile(run / name, cell / name)
    before = (cell / "checkpoint-best.pt").read_bytes()
    assert main(setup.argv) == 2
    err = capsys.readouterr().err
    assert "checkpoint-best.pt but no checkpoint-last.pt" in err and err.count("\n") == 1, err
    assert (cell / "checkpoint-best.pt").read_bytes() == before


# -- no file is written around the writer ------------------------------------------------------------------

#: Modules allowed to write files other than through the writer, and why.
WRITES_ALLOWED = {
    "engine/checkpoint.py": "replace_atomic itself: the temporary file and the rename",
    "engine/writer.py": "the writer: open_append of a log, O_NOFOLLOW, regular files only",
    "engine/lock.py": "the lock's pid file, opened with O_NOFOLLOW and only ever a regular file",
    "data/datasets.py": "loader workers' lines in skipped-images.txt: O_NOFOLLOW | O_NONBLOCK, regular files only",
    "engine/tensorboard.py": "TensorBoard's event stream, in the run's tensorboard/ folder checked before the run",
    "bench/end_to_end.py": "its synthetic data set, in a temporary folder of its own",
    "console.py": "os.devnull, for a closed stdout",
    "engine/history.py": "checkpoint_keep's hard link of checkpoint-last.pt, renamed in; a run file (is_run_file_name)",
    "export/hf_folder.py": "timm's save_for_hf into a new temporary folder beside --out, renamed in after the checks",
}
#: Calls that write a file when not given an open file object of the writer's.
WRITING_ATTRIBUTES = {
    "write_text", "write_bytes", "savefig", "touch", "symlink_to", "hardlink_to", "save_file", "mkstemp",
    "NamedTemporaryFile", "copyfile", "copy2", "copytree", "move", "SummaryWriter",
}  # fmt: skip
WRITER_FUNCTIONS = {"write_output", "replace_atomic", "write_text_output"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _writes(node: ast.Call) -> bool:
    name = _call_name(node)
    if name in WRITING_ATTRIBUTES:
        return True
    if name == "save" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "torch":
        return True
    if name in ("replace", "rename") and getattr(getattr(node.func, "value", None), "id", "") == "os":
        return True
    if name == "open" and getattr(getattr(node.func, "value", None), "id", "") == "os":  # flags: read-only or not
        flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
        return "O_RDONLY" not in flags or any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT"))
    if name == "open":
        mode = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]
        return any(not isinstance(m, ast.Constant) or set(str(m.value)) & set("wax+") for m in mode)
    return False


def unguarded_writes(source: str) -> list[int]:
    """The lines of ``source`` that write a file, except inside a lambda handed to the writer."""
    tree = ast.parse(source)
    inside_writer: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in WRITER_FUNCTIONS:
            for arg in node.args:
                if isinstance(arg, ast.Lambda):
                    inside_writer |= {id(n) for n in ast.walk(arg)}
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and _writes(n) and id(n) not in inside_writer]


def test_no_module_writes_a_file_around_the_writer():
    package = ROOT / "accord"
    found = {
        str(path.relative_to(package)): lines
        for path in sorted(package.rglob("*.py"))
        if (lines := unguarded_writes(path.read_text())) and str(path.relative_to(package)) not in WRITES_ALLOWED
    }
    assert found == {}, f"files written around accord.engine.writer (module: lines): {found}"
    needed = {str(p.relative_to(package)) for p in package.rglob("*.py") if unguarded_writes(p.read_text())}
    assert set(WRITES_ALLOWED) <= needed, f"exceptions no longer needed: {set(WRITES_ALLOWED) - needed}"


def test_the_write_check_finds_each_kind_of_write():
    for code in ("Path(p).write_text('x')", "fig.savefig(p)", "torch.save(x, p)", "save_file(s, p)",
                 "open(p, 'w')", "open(p, mode='a')", "os.open(p, os.O_WRONLY)", "os.open(p, flags)",
                 "gzip.open(p, 'wb')", "os.replace(a, b)"):  # fmt: skip
        assert unguarded_writes(code) == [1], code
    assert unguarded_writes("write_output(p, lambda f: torch.save(x, f))") == []
    assert unguarded_writes("open(p)") == [] and unguarded_writes("text.replace('a', 'b')") == []
    assert unguarded_writes("os.open(p, os.O_RDONLY | os.O_NOFOLLOW)") == []


@pytest.mark.parametrize("folder", sorted(p.parent for p in (ROOT / "docs/results").rglob("report.md")), ids=str)
def test_committed_reports_are_recorded_as_accords_own(folder):
    """``accord report`` on a committed grid rewrites its files in place (the README says so): each is
    recorded in the folder's ``.accord-outputs.json`` with the bytes committed."""
    from accord.engine.writer import written_by_accord
    from accord.report import REPORT_FILES

    for path in [*(folder / name for name in REPORT_FILES), *folder.glob("figure-*.png"), *folder.glob("gains-*.png")]:
        assert written_by_accord(path), f"{path}: not recorded; run `accord report {folder} --overwrite` once"
