"""One run per save dir (and per log file): an exclusive lock held for the life of the run.

Two runs in one save dir would write each other's checkpoints (one run's JSON beside the other's
weights) and interleave their logs. The lock is `flock` on a small file that also names its
holder (host, pid, start time): the kernel drops it when the holder dies however it dies, so a
lock of a dead process is simply taken over, and a second live run is refused in one line.
"""
import errno
import fcntl
import json
import os
import socket
import stat
import time

from gluon_tricks.errors import UserError

LOCK_NAME = ".gluon-tricks.lock"


class _Lock:
    def __init__(self, path, what):
        self.path, self.what, self.fd = path, what, None
        self.previous = None  # the holder a dead process left in the file, if any

    def acquire(self):
        fd = _open_regular(self.path, self.what)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise UserError("%s is in use by another run (%s; lock %s): wait for it to end or "
                            "choose another %s" % (self.what, holder, self.path,
                                                   self.what.split()[0])) from None
        except OSError as error:
            os.close(fd)
            raise UserError("cannot lock %s (%s): %s" % (self.what, self.path,
                                                         error.strerror)) from None
        self.previous = _read_holder(fd)
        holder = {"host": socket.gethostname(), "pid": os.getpid(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:  # naming the holder is a courtesy: a full disk must not stop the run here
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:
            pass
        self.fd = fd

    def release(self):
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _open_regular(path, what):
    """The lock file opened for writing without following a symlink (one placed there would
    make the lock truncate its target), refused in one line unless it is a regular file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserError("the lock %s of %s is a symbolic link; refusing to write through "
                            "it (remove it)" % (path, what)) from None
        raise UserError("cannot create the lock %s of %s: %s"
                        % (path, what, error.strerror or error)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError("the lock %s of %s is not a regular file; refusing to use it (remove it)"
                        % (path, what))
    return fd


def _read_holder(fd):
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _describe(holder):
    if not isinstance(holder, dict):
        return "holder unknown"
    return "pid %s on %s since %s" % (holder.get("pid"), holder.get("host"), holder.get("since"))


class RunLock:
    """Exclusive locks on the save dir and on the log file (LOG.lock: another run may name the
    same log with another save dir), taken before anything is written; `release()` (or the
    process's end) frees them."""

    def __init__(self, save_dir, log_file=None):
        self.locks = [_Lock(os.path.join(save_dir, LOCK_NAME), "--save-dir %s" % save_dir)]
        if log_file:
            self.locks.append(_Lock(os.path.abspath(log_file) + ".lock",
                                    "--logging-file %s" % log_file))

    def acquire(self):
        """Take every lock or none; returns lines for the log about locks taken over."""
        notes = []
        try:
            for lock in self.locks:
                try:
                    os.makedirs(os.path.dirname(lock.path), exist_ok=True)
                except OSError as error:
                    raise UserError("cannot create the folder of %s (%s): %s" % (
                        lock.what, os.path.dirname(lock.path), error.strerror or error)) from None
                lock.acquire()
                if isinstance(lock.previous, dict):
                    notes.append("took over the lock %s of a run that is no longer running (%s)"
                                 % (lock.path, _describe(lock.previous)))
        except BaseException:
            self.release()
            raise
        return notes

    def release(self):
        for lock in self.locks:
            lock.release()
