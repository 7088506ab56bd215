"""An error in the user's input ends a command in one line (exit 2); any other error is a bug in accord and shows
its traceback (exit 1). The user's error types are the command line's own list (``accord.cli.user_errors``)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import accord
from accord.cli import COMMANDS, main, user_errors


def every_subclass(kinds: tuple[type[Exception], ...]) -> list[type[Exception]]:
    """Every accord class of the user's error types (each module imported, so that each is defined)."""
    for module in pkgutil.walk_packages(accord.__path__, "accord."):
        if module.name != "accord.__main__":
            importlib.import_module(module.name)
    found: list[type[Exception]] = []
    todo = list(kinds)
    while todo:
        cls = todo.pop()
        if cls not in found and (cls.__module__.startswith("accord") or cls in kinds):
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


USER_ERRORS = every_subclass(user_errors()) + [FileNotFoundError, PermissionError, IsADirectoryError]


def make(cls: type[Exception]) -> Exception:
    """An instance of ``cls`` with a one-line message, whatever its constructor takes."""
    for args in (("the input is wrong",), ("the/path", "the input is wrong")):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"{cls}: cannot be made")


def test_the_user_errors_include_accords_own():
    names = {cls.__name__ for cls in USER_ERRORS}
    assert {"UserError", "ConfigError", "RunFolderError", "CheckpointError", "DataMismatchError"} <= names


@pytest.mark.parametrize("cls", USER_ERRORS, ids=lambda c: c.__name__)
def test_a_user_error_is_one_line(cls, monkeypatch, capsys):
    def fails(args):
        raise make(cls)

    monkeypatch.delenv("ACCORD_DEBUG", raising=False)
    monkeypatch.setitem(COMMANDS, "configs", (COMMANDS["configs"][0], fails))
    assert main(["configs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accord: error: ") and "Traceback" not in err, err


@pytest.mark.parametrize("cls", [ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError])
@pytest.mark.parametrize(
    ("argv", "deep"),
    [
        (["configs"], "accord.config.listing.format_listing"),
        (["configs", "FashionMNIST-ResNet8-standard"], "accord.config.files.resolve"),
    ],
)
def test_an_internal_error_shows_its_traceback(cls, argv, deep, monkeypatch, capsys):
    def bug(*args, **kwargs):
        raise cls("an internal bug")

    monkeypatch.delenv("ACCORD_DEBUG", raising=False)
    monkeypatch.setattr(deep, bug)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):"), err
    assert f"{cls.__name__}: " in err and "an internal bug" in err and "accord: internal error" in err


def test_the_debug_switch_shows_a_user_errors_traceback(monkeypatch, capsys):
    def fails(args):
        raise make(user_errors()[0])

    monkeypatch.setenv("ACCORD_DEBUG", "1")
    monkeypatch.setitem(COMMANDS, "configs", (COMMANDS["configs"][0], fails))
    assert main(["configs"]) == 2
    assert capsys.readouterr().err.startswith("Traceback (most recent call last):")
