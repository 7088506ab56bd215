"""Export a run as the folder timm's own ``save_for_hf`` writes: ``config.json`` and ``model.safetensors``.

Plain timm loads it with no accord code (accord's ``cifar_*`` networks excepted: ``requires`` says so)::

    model = timm.create_model("local-dir:PATH", pretrained=True)
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))

``config.json`` holds the architecture, ``num_classes``, ``label_names`` (the class names in label order) and a
``pretrained_cfg`` with the run's input size, normalisation, evaluation crop (``crop_pct``) and interpolation,
so timm's transform is accord's evaluation transform; ``accord`` holds the run's provenance.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__
from .errors import ExportError
from .labels import class_names
from .run import load_run_export

#: The files of an export folder, as timm names them.
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


def export_hf_folder(src: str | Path, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write the evaluation model of an accord run folder or checkpoint as a timm folder ``out``.

    ``out`` may be new, an empty folder, or (with ``overwrite``) an earlier export of accord's; anything else
    is refused. The folder is written next to ``out`` and moved into place: never half an export. Returns
    the ``config.json`` written, as a dict.
    """
    import json

    import timm
    from timm.models import save_for_hf

    from ..models import cifar  # noqa: F401  (registers accord's CIFAR networks with timm)

    out = Path(out)
    check_export_folder(out, overwrite)
    run = load_run_export(src)
    model = timm.create_model(run.arch, pretrained=False, num_classes=run.num_classes, in_chans=run.in_chans)
    model.load_state_dict(run.state)
    data_keys = ("input_size", "mean", "std", "crop_pct", "interpolation")
    data_config = {key: run.extra[key] for key in data_keys if key in run.extra}
    provenance = {key: value for key, value in run.extra.items() if key not in data_keys}
    provenance["accord_version"] = __version__
    model_config = {"label_names": class_names(run.checkpoint, run.num_classes), "accord": provenance}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        save_for_hf(model, str(tmp), model_config=model_config, safe_serialization=True, data_config=data_config)
        _give_umask_modes(tmp)
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return json.loads((out / CONFIG_FILE).read_text())


def export_format(out: str | Path, asked: str | None) -> str:
    """``asked`` (safetensors or hf), else ``hf`` for an ``out`` without a suffix (a folder), ``safetensors`` else."""
    return asked or ("safetensors" if Path(out).suffix else "hf")


def export_hf_command(src: str | Path, out: str | Path, overwrite: bool) -> int:
    """``accord export --format hf``: write the folder and say how timm loads it."""
    config = export_hf_folder(src, out, overwrite)
    print(f"{out}: {config['architecture']} ({config['num_classes']} classes); in plain timm: "
          f"timm.create_model('local-dir:{out}', pretrained=True)")  # fmt: skip
    if "requires" in config["accord"]:
        print(f"note: loading it needs {config['accord']['requires']}")
    return 0


def check_export_folder(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is not new, an empty folder, or (with ``overwrite``) accord's own export."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        raise ExportError(f"--out {out}: is a file; name a new folder for the export (or use --format safetensors)")
    if not stat.S_ISDIR(mode):
        kinds = {
            stat.S_ISLNK: "a symlink",
            stat.S_ISFIFO: "a FIFO",
            stat.S_ISSOCK: "a socket",
            stat.S_ISCHR: "a device",
        }
        kind = next((name for test, name in kinds.items() if test(mode)), "not a folder")
        raise ExportError(f"--out {out}: is {kind}, not a regular file or folder; name a new folder for the export")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if not overwrite:
        raise ExportError(f"--out {out}: already exists; use --overwrite to replace an earlier export")
    if not is_accord_export(out):
        raise ExportError(
            f"--out {out}: holds {', '.join(entries[:3])}{' ...' if len(entries) > 3 else ''}, not only an accord "
            f"export ({CONFIG_FILE}, {WEIGHTS_FILE}); --overwrite replaces accord's exports only"
        )


def is_accord_export(folder: Path) -> bool:
    """A folder with nothing but this module's two files, its ``config.json`` one of accord's."""
    import json

    entries = {p.name for p in folder.iterdir()}
    if not entries <= {CONFIG_FILE, WEIGHTS_FILE} or any((folder / e).is_symlink() for e in entries):
        return False
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("accord"), dict)


def _give_umask_modes(folder: Path) -> None:
    """The modes a plain ``mkdir``/``open`` would give (``mkdtemp`` and safetensors create 0700/0600)."""
    from ..engine.checkpoint import current_umask

    umask = current_umask()
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the written folder to ``out``; into an existing (checked) ``out``, replace file by file."""
    if not out.exists():
        os.rename(tmp, out)
        return
    for name in (WEIGHTS_FILE, CONFIG_FILE):  # the config last: a folder with it is a whole export
        os.replace(tmp / name, out / name)
