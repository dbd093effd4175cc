"""Writing files that survive crashes and full disks: atomic writes under temporary names
`FINAL.tmp-HOST-PID` (those of dead processes of this host are removed at start), free-space
checks, digests."""
import errno
import glob
import hashlib
import os
import re
import shutil
import socket

from gluon_tricks.errors import UserError

TEMP_MARK = ".tmp-"
_OWNER = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)(?:\..*)?$")  # HOST-PID[.suffix]
_MB = 1 << 20


def temp_name(path, suffix=""):
    """The temporary name under which this process writes `path` before renaming it."""
    return "%s%s%s-%d%s" % (path, TEMP_MARK, socket.gethostname(), os.getpid(), suffix)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale_temp_files(pattern):
    """Remove the temporary files matching the glob `pattern` that a dead process of this host
    left; returns their paths."""
    host = socket.gethostname()
    stale = []
    for path in glob.glob(pattern):
        name = os.path.basename(path)
        if TEMP_MARK not in name:
            continue
        owner = _OWNER.match(name[name.rfind(TEMP_MARK) + len(TEMP_MARK):])
        if owner is not None and owner.group("host") == host and not _pid_alive(
                int(owner.group("pid"))):
            stale.append(path)
    return remove_quietly(stale)


def remove_quietly(paths):
    """Remove the files of `paths` that can be removed; returns those removed."""
    removed = []
    for path in paths:
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def free_bytes(directory):
    """Bytes free for this user on the file system holding `directory`."""
    return shutil.disk_usage(directory).free


def describe_free(directory):
    try:
        return "%.1f MB free in %s" % (free_bytes(directory) / _MB, directory)
    except OSError:
        return "free space of %s unknown" % directory


def require_free_space(directory, needed, what):
    """UserError unless `needed` bytes (and a 5% margin) are free in `directory`."""
    free = free_bytes(directory)
    if free < needed * 1.05:
        raise UserError("not enough disk space for %s: it needs about %.1f MB, %.1f MB are free "
                        "in %s" % (what, needed / _MB, free / _MB, directory))


def disk_error(error, path):
    """The one-line UserError for an OSError met writing `path` (a full disk: the free space)."""
    directory = os.path.dirname(os.path.abspath(path))
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError("disk full while writing %s (%s); the partial file was removed"
                         % (path, describe_free(directory)))
    return UserError("cannot write %s: %s" % (path, error.strerror or error))


def write_atomically(path, write):
    """Call `write(temporary path)`, then rename it to `path` (readers see all or nothing); on
    failure remove it, an OSError becoming a UserError naming `path`."""
    tmp = temp_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise disk_error(error, path) from None
        if looks_like_full_disk(error, path):  # MXNet's own writers raise MXNetError
            raise disk_error(OSError(errno.ENOSPC, "No space left on device"), path) from None
        raise


def looks_like_full_disk(error, path):
    """MXNet reports a failed write as "FileStream.Write incomplete", without the errno."""
    text = str(error)
    if "No space left" in text:
        return True
    try:
        return "Write incomplete" in text and free_bytes(
            os.path.dirname(os.path.abspath(path))) < 64 * _MB
    except OSError:
        return False


def digest(path):
    """(size in bytes, SHA-256 hex digest) of a file."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()
