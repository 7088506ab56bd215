"""The image files of a class folder: each real file once, directory symlinks followed at most once.

torchvision's ``make_dataset`` walks with ``os.walk(followlinks=True)``: a symlink loop in a class folder
(``ln -s . train/cat/again``) repeats every image of the class dozens of times (and, through the seeded
train/val split, puts copies of training images into validation), two loops never end, and a FIFO named
``pipe.png`` blocks the first ``open()`` forever. This walk visits each directory once (by device and
inode), keeps only regular files and counts each of them once, however many paths lead to it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator


def regular_files(folder: str, keep: Callable[[str], bool], seen: set[tuple[int, int]]) -> Iterator[str]:
    """The paths of the regular files under ``folder`` that ``keep`` accepts, in sorted walk order, each
    real file once (``seen`` holds the (device, inode) of the files and directories already met; add
    those of ``folder`` and of its siblings first, so that a link to one of them is not followed)."""
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in sorted(dirs) if _first_visit(os.path.join(root, d), seen, stat.S_ISDIR)]
        for name in sorted(names):
            path = os.path.join(root, name)
            if keep(path) and _first_visit(path, seen, stat.S_ISREG):
                yield path


def directory_keys(*folders: str) -> set[tuple[int, int]]:
    """The (device, inode) of the existing ``folders``: the start of :func:`regular_files`'s ``seen``."""
    keys = set()
    for folder in folders:
        try:
            st = os.stat(folder)
        except OSError:
            continue
        keys.add((st.st_dev, st.st_ino))
    return keys


def _first_visit(path: str, seen: set[tuple[int, int]], kind: Callable[[int], bool]) -> bool:
    """Whether ``path`` (followed through links) is of ``kind`` and not met before; marks it met."""
    try:
        st = os.stat(path)
    except OSError:  # a broken link, a file removed meanwhile
        return False
    key = (st.st_dev, st.st_ino)
    if not kind(st.st_mode) or key in seen:
        return False
    seen.add(key)
    return True


_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNNAMED = {v[1]: k for k, v in _NAMED.items()}
_ESCAPE = re.compile(r"\\(?:([\\tnr])|x([0-9a-f]{2})|u([0-9a-f]{4}))")


def escape_path(path: str) -> str:
    """``path`` on one line with no tab, for a ``path<TAB>reason`` list: backslash, tab, newline and carriage
    return as ``\\\\ \\t \\n \\r``, other control characters as ``\\uXXXX`` and bytes that are not UTF-8 (Python's
    surrogate escapes) as ``\\xNN``. :func:`unescape_path` gives back the exact name."""
    out = []
    for c in path:
        code = ord(c)
        if c in _NAMED:
            out.append(_NAMED[c])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def unescape_path(text: str) -> str:
    """The inverse of :func:`escape_path`."""

    def one(match: re.Match[str]) -> str:
        named, byte, code = match.groups()
        if named:
            return _UNNAMED[named]
        return chr(0xDC00 + int(byte, 16)) if byte else chr(int(code, 16))

    return _ESCAPE.sub(one, text)
