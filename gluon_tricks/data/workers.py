"""Forked worker processes that fill whole batches straight into shared memory, ahead of use.

Not mx.gluon.data.DataLoader: its workers pickle every batch through a pipe or /dev/shm (64 MB
under Docker). Here workers (numpy/OpenCV only) write into one anonymous mapping made before the
fork, and the consumer gets a zero-copy NDArray. Fork, not spawn: nothing is pickled and scripts
need no `__main__` guard.
"""
import collections
import ctypes
import gc
import logging
import mmap
import multiprocessing
import os
import signal
import sys
import time
import traceback
import weakref
from multiprocessing.connection import wait

import numpy as np

from gluon_tricks.errors import UserError

LOG = logging.getLogger(__name__)
_POLL_S = 0.5  # how often a wait for data looks for dead workers, the deadline and a stop
MAX_DEATHS_IN_A_ROW = 3
_STOP_GRACE_S = 2.0  # how long close() lets idle workers exit before killing them


class WorkerError(RuntimeError):
    """A data worker failed (an exception in its fill)."""


class WorkersKeepDying(UserError):
    """Data workers died again and again (out of memory, killed): the stream cannot go on."""


class DataWaitStopped(RuntimeError):
    """A wait for a batch ended because `stop_requested()` said so; the pool can serve again."""


class _Slots:
    """`count` (data, label) float32 buffers in one shared mapping, and per slot the index of the
    image its worker is at (-1: none), for naming a stuck worker."""

    def __init__(self, count, data_shape):
        data_size, batch = int(np.prod(data_shape)), data_shape[0]
        floats = count * (data_size + batch)
        self._map = mmap.mmap(-1, max(1, floats * 4 + count * 8))
        flat = np.frombuffer(self._map, np.float32, count=floats)
        self.data = flat[:count * data_size].reshape((count,) + tuple(data_shape))
        self.labels = flat[count * data_size:].reshape(count, batch)
        self.reading = np.frombuffer(self._map, np.int64, count=count, offset=floats * 4)


def oom_kill_count():
    """The kernel's OOM-kill count: this cgroup v2's memory.events, else /proc/vmstat; or None."""
    try:
        with open("/proc/self/cgroup") as f:
            group = next((line.split("::", 1)[1].strip() for line in f
                          if line.startswith("0::")), None)
        paths = ["/sys/fs/cgroup%s/memory.events" % group.rstrip("/")] if group else []
    except OSError:
        paths = []
    for path, key in [(p, "oom_kill") for p in paths] + [("/proc/vmstat", "oom_kill")]:
        try:
            with open(path) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) == 2 and fields[0] == key:
                        return int(fields[1])
        except (OSError, ValueError):
            continue
    return None


def death_cause(exitcode, oom_before, oom_after):
    """Why a worker ended, in words: a SIGKILL is blamed on the OOM killer only if oom_kill rose."""
    if exitcode is None:
        return "did not exit even when killed (stuck in the kernel, e.g. a hung NFS read)"
    if exitcode >= 0:
        return "exit code %d" % exitcode
    if -exitcode != signal.SIGKILL:
        return "killed by signal %d" % -exitcode
    if oom_before is None or oom_after is None:
        return "killed by signal 9, SIGKILL (out of memory or killed by another process)"
    if oom_after > oom_before:
        return ("killed by signal 9, SIGKILL, by the out-of-memory killer (the kernel's oom_kill "
                "count rose by %d meanwhile)" % (oom_after - oom_before))
    return ("killed by signal 9, SIGKILL, by another process (not the out-of-memory killer: the "
            "kernel's oom_kill count did not change)")


def _tune_worker_process():
    """Die with the parent even when it is killed, and keep freed heap instead of mmap-ing fresh
    pages per decoded image: ~15% faster decode (Linux, glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        libc.mallopt(-3, 1 << 27)  # M_MMAP_THRESHOLD: 128 MB
        libc.mallopt(-1, 1 << 28)  # M_TRIM_THRESHOLD: 256 MB
    except (OSError, AttributeError):
        pass


def _worker_main(fill, slots, tasks, results):
    """Fill the batches sent on `tasks`, answer on `results`: own pipes, not shared queues, so a
    worker killed mid-message can break only its own."""
    # Ctrl-C and preemption signals are the parent's to handle; it stops us.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
    _tune_worker_process()
    import cv2
    cv2.setNumThreads(1)  # one worker = one core; OpenCV's own threads would oversubscribe
    while True:
        try:
            item = tasks.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        seq, slot, task = item
        try:
            if getattr(fill, "reports_reading", False):  # it notes each image it is at
                meta = fill(task, slots.data[slot], slots.labels[slot],
                            slots.reading[slot:slot + 1])
            else:
                meta = fill(task, slots.data[slot], slots.labels[slot])  # (filled, meta)
            results.send((seq, slot, meta, None))
        except Exception:  # pylint: disable=broad-except
            results.send((seq, slot, None, traceback.format_exc()))


def fork_workers(start):
    """Run `start()` (which forks) with OpenCV's thread pool shut: a child inheriting it hangs."""
    import cv2
    mxnet = sys.modules.get("mxnet")
    if mxnet is not None:
        # MXNet's pre-fork handler waits for pending operations while holding the GIL, and
        # freeing a zero-copy batch needs the GIL: drain the engine first or the fork hangs.
        gc.collect()
        mxnet.nd.waitall()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return start()
    finally:
        cv2.setNumThreads(threads)


class _Worker:
    """One worker process, its two pipes, and the tasks it owes: {seq: (slot, task)}."""

    def __init__(self, proc, tasks, results):
        self.proc, self.tasks, self.results = proc, tasks, results
        self.owed = {}

    def close_pipes(self):
        for conn in (self.tasks, self.results):
            try:
                conn.close()
            except OSError:
                pass


class WorkerPool:
    """Runs `fill(task, data_out, label_out) -> (filled, meta)` on `num_workers` forked processes
    (inline when 0) and yields (meta, data, label) NDArrays in task order; `data` is a zero-copy
    view of its slot while at most `lend` batches are alive, else a copy.

    A dead worker is replaced and its batches redone (the stream does not change);
    `MAX_DEATHS_IN_A_ROW` deaths without a batch raise WorkersKeepDying. A worker silent for
    `data_timeout` s on the awaited batch is killed and replaced; `stop_requested()` ends a wait
    with DataWaitStopped. A fill with `reports_reading = True` gets a fourth argument where it
    notes the image it is at, which `describe(task, index)` words for a stuck worker. Deaths are
    logged and kept in `events`; `label` (e.g. "rank 1") names the process."""

    def __init__(self, fill, num_workers, data_shape, prefetch=2, lend=2, data_timeout=None,
                 stop_requested=None, describe=None, label=""):
        self.fill = fill
        self.num_workers = int(num_workers)
        self.data_shape = tuple(data_shape)
        self.lend = lend
        self.data_timeout = data_timeout or None
        self.stop_requested = stop_requested
        self.describe = describe or (lambda task, index: "task %r" % (task,))
        self.label = label
        self.num_slots = max(1, self.num_workers + prefetch) + lend
        self.deaths = 0  # workers replaced over the pool's life
        self.events = []  # one line per worker replaced, as logged
        self._deaths_in_a_row = 0
        self._oom_kills = None
        self._slots = None
        self._workers = []
        self._free = self._lent = None
        self._active = None  # weak reference to the running map's generator

    def _start(self):
        self._slots = _Slots(self.num_slots, self.data_shape)
        self._free, self._lent = collections.deque(range(self.num_slots)), set()
        self._deaths_in_a_row = 0
        self._workers = [self._fork() for _ in range(self.num_workers)]
        if self.num_workers:
            self._oom_kills = oom_kill_count()

    def _fork(self):
        context = multiprocessing.get_context("fork")
        task_out, task_in = context.Pipe(duplex=False)  # (reader, writer)
        result_out, result_in = context.Pipe(duplex=False)
        proc = context.Process(target=_worker_main, daemon=True,
                               args=(self.fill, self._slots, task_out, result_in))
        fork_workers(proc.start)
        task_out.close()  # the child's ends: closed here so that its death shows as EOF
        result_in.close()
        return _Worker(proc, task_in, result_out)

    def map(self, tasks):
        """(meta, data, label) per task in order (None, None for a batch not filled at all); a
        new map ends the previous one, so two streams never mix."""
        previous = self._active() if self._active is not None else None
        if previous is not None:
            previous.close()  # drains its batches in flight
        batches = self._map(tasks)
        self._active = weakref.ref(batches)
        return batches

    def _map(self, tasks):
        if self._slots is None:
            self._start()
        tasks, done = iter(tasks), {}
        submitted = next_seq = 0
        exhausted = False
        try:
            while True:
                # keep every free slot busy
                while self._free and not exhausted:
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    self._submit(submitted, self._free.popleft(), task, done)
                    submitted += 1
                if next_seq == submitted:
                    self._replace_the_dead()  # one that died owing nothing is found here
                    return
                if next_seq not in done:
                    self._await(next_seq, done)
                slot, (filled, meta) = done.pop(next_seq)
                next_seq += 1
                if filled == 0:
                    self._free.append(slot)
                    yield meta, None, None
                    continue
                data, label = self._hand_over(slot, filled)
                yield meta, data, label
        finally:
            self._abandon(done)

    def _await(self, seq, done):
        """Collect results into `done` until batch `seq` is there, killing a stuck owner."""
        started = polled = time.monotonic()
        while seq not in done:
            timeout = _POLL_S
            if self.data_timeout:
                timeout = max(0.0, min(timeout, started + self.data_timeout - time.monotonic()))
            result = self._get(timeout)
            if result is not None:
                got, slot, meta, error = result
                if error is not None:
                    raise WorkerError("data worker failed:\n" + error)
                done[got] = (slot, meta)
                if result[0] == seq:
                    return
            now = time.monotonic()
            if self.stop_requested is not None and (result is None or now - polled >= _POLL_S):
                polled = now
                if self.stop_requested():
                    raise DataWaitStopped("stopped while waiting for data (batch %d of the "
                                          "stream)" % seq)
            if self.data_timeout and now - started >= self.data_timeout:
                stuck = next((w for w in self._workers if seq in w.owed), None)
                if stuck is not None:
                    self._kill_stuck(stuck, now - started)
                started = time.monotonic()

    def _kill_stuck(self, worker, waited):
        """SIGKILL (it ends a stopped process too) and replace a silent worker, naming its image."""
        first = min(worker.owed)
        slot, task = worker.owed[first]
        index = int(self._slots.reading[slot])
        at = self.describe(task, index)
        try:
            os.kill(worker.proc.pid, signal.SIGKILL)
        except OSError:
            pass  # gone meanwhile
        worker.proc.join(timeout=1)
        self._replace(worker, "sent no batch for %.0f s (--data-timeout %g) while at %s: killed "
                              "with SIGKILL" % (waited, self.data_timeout, at), stuck=True)

    def _abandon(self, done):
        """End a stream: workers still owing batches are killed (waiting could block forever);
        finished but unconsumed batches free their slots."""
        if any(worker.owed for worker in self._workers):
            self._stop_workers(grace=0)
            self._slots = None  # the next map starts afresh (lent batches keep the old memory)
        elif self._free is not None:
            self._free.extend(slot for slot, _ in done.values())

    def _submit(self, seq, slot, task, done):
        if self.num_workers == 0:
            done[seq] = (slot, self.fill(task, self._slots.data[slot], self._slots.labels[slot]))
            return
        worker = min(self._workers, key=lambda w: len(w.owed))  # the least busy
        worker.owed[seq] = (slot, task)
        self._slots.reading[slot] = -1  # not started (the worker notes each image it reads)
        try:
            worker.tasks.send((seq, slot, task))
        except OSError:
            pass  # a dead worker: _get replaces it and sends the task again

    def _hand_over(self, slot, filled):
        """The slot's batch as NDArrays: zero-copy and lent while few are lent, else copied."""
        import mxnet as mx
        label = mx.nd.array(self._slots.labels[slot][:filled], dtype=np.float32)
        view = self._slots.data[slot][:filled]
        if len(self._lent) < self.lend:
            self._lent.add(slot)
            # back to the free list when MXNet drops the last reference to the memory
            weakref.finalize(view, _give_back, self._free, self._lent, slot)
            return mx.nd.from_numpy(view, zero_copy=True), label
        data = mx.nd.array(view, dtype=np.float32)
        self._free.append(slot)
        return data, label

    def _get(self, timeout):
        """The next (seq, slot, meta, error) within `timeout` s, or None; replaces dead workers."""
        if self.num_workers == 0:
            raise WorkerError("no data worker is running")
        by_handle = {}
        for worker in self._workers:
            by_handle[worker.results] = worker
            by_handle[worker.proc.sentinel] = worker
        for handle in wait(list(by_handle), timeout=timeout):
            worker = by_handle[handle]
            if handle is worker.results:
                try:
                    result = worker.results.recv()
                except (EOFError, OSError):
                    result = None  # died mid-message: replaced below
                if result is not None and result[0] in worker.owed:
                    del worker.owed[result[0]]
                    self._deaths_in_a_row = 0
                    return result
        self._replace_the_dead()
        return None

    def _replace_the_dead(self):
        """Replace workers that died since the last look."""
        for worker in list(self._workers):
            if not worker.proc.is_alive():
                worker.proc.join(timeout=1)
                oom_kills = oom_kill_count()
                self._replace(worker, death_cause(worker.proc.exitcode, self._oom_kills,
                                                  oom_kills))

    def _where(self):
        return " of %s" % self.label if self.label else ""

    def _replace(self, dead, cause, stuck=False):
        """A dead worker's successor, which fills again every batch the dead one owed."""
        self.deaths += 1
        self._deaths_in_a_row += 1
        self._oom_kills = oom_kill_count()  # the next death is judged from here
        if self._deaths_in_a_row >= MAX_DEATHS_IN_A_ROW:
            self._stop_workers(grace=0)
            self._slots = None
            line = ("%d data workers%s died in a row without delivering a batch (the last: pid "
                    "%d, %s); %s" % (self._deaths_in_a_row, self._where(), dead.proc.pid, cause,
                                     "is the data's storage hanging? or raise --data-timeout if "
                                     "batches are just slow" if stuck else
                                     "out of memory? try fewer workers (-j) or a smaller batch"))
            self.events.append(line)
            raise WorkersKeepDying(line)
        line = ("data worker %d%s %s; replaced, its %d batch(es) redone"
                % (dead.proc.pid, self._where(), cause if stuck else "died (%s)" % cause,
                   len(dead.owed)))
        LOG.warning("%s", line)
        self.events.append(line)
        dead.close_pipes()
        successor = self._fork()
        self._workers[self._workers.index(dead)] = successor
        for seq, (slot, task) in sorted(dead.owed.items()):
            successor.owed[seq] = (slot, task)
            self._slots.reading[slot] = -1
            try:
                successor.tasks.send((seq, slot, task))
            except OSError:
                pass  # died already: the next round replaces it too

    def _stop_workers(self, grace=_STOP_GRACE_S):
        """End every worker: idle ones exit within `grace` seconds, the rest are killed."""

        workers, self._workers = self._workers, []
        for worker in workers:
            if grace:
                try:
                    worker.tasks.send(None)
                except OSError:
                    pass
            else:
                worker.proc.kill()  # workers ignore SIGTERM; SIGKILL also ends a stopped one
        deadline = time.monotonic() + grace
        for worker in workers:
            worker.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.proc.is_alive():
                worker.proc.kill()
        for worker in workers:
            worker.proc.join(timeout=2)
            worker.close_pipes()

    def worker_pids(self):
        """The process ids of the running workers (for tests and diagnostics)."""
        return [worker.proc.pid for worker in self._workers]

    def close(self):
        """Stop the workers (they also stop when the parent exits)."""
        self._stop_workers()
        self._slots = None

    def __del__(self):
        if self._workers:
            self.close()


def _give_back(free, lent, slot):
    lent.discard(slot)
    free.append(slot)
