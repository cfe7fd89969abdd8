"""Open only regular files, without ever blocking on the open itself.

A FIFO opened for reading blocks in ``open`` until a writer appears, and a device
(``/dev/zero``) or a socket never ends: an attacker who can place such a name in a scanned
folder (or a user who passes one by mistake) must get an input error, not a hang. The
file is opened with ``O_NONBLOCK`` (which returns at once for a FIFO) and checked with
``fstat`` on the descriptor, so a name swapped between a check and the open cannot slip
through; ``O_NONBLOCK`` is then cleared for the regular file that remains.
"""

from __future__ import annotations

import fcntl
import os
import stat
from typing import BinaryIO

from spywall.errors import SpywallError


class NotRegularFile(SpywallError):
    """The path names a FIFO, a device, a socket or a folder: nothing spywall reads."""

    code = "io"


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a folder"))


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def open_regular_fd(path: str | os.PathLike[str], follow: bool = True) -> int:
    """A read-only descriptor of the regular file at ``path``.

    ``NotRegularFile`` for anything else, ``OSError`` when it cannot be opened.
    ``follow=False`` refuses a symbolic link at the last component (``O_NOFOLLOW``).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{os.fspath(path)} is {kind_of(mode)}: only regular files "
                                 "are read")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: str | os.PathLike[str], follow: bool = True) -> BinaryIO:
    """``open_regular_fd`` as a binary file object (closed with the descriptor)."""
    return os.fdopen(open_regular_fd(path, follow), "rb")
