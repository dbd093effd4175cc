"""Forked worker processes that fill whole batches straight into shared memory, ahead of use.

Why not mx.gluon.data.DataLoader: its workers pickle every batch back through a pipe or /dev/shm
(which Docker caps at 64 MB). Here the batch buffers are one anonymous shared mapping made before
the fork: a worker writes its batch in place and sends back a few numbers, and the consumer gets
the batch as a zero-copy NDArray. Workers run numpy/OpenCV only, never MXNet. Fork, not spawn or
forkserver: nothing is pickled and a script without `if __name__ == "__main__"` still works; the
one fork hazard met here, OpenCV's thread pool (a child inheriting it hangs), is shut first.
"""
import collections
import logging
import mmap
import multiprocessing
import os
import signal
import time
import traceback
import weakref

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
    """A wait for a batch was given up because `stop_requested()` said so (a stop signal): the
    stream is over, its workers are stopped, and the pool can serve a new stream or close."""


class _Slots:
    """`count` (data, label) float32 buffers in one shared anonymous mapping (kept by forks), and
    per slot the index of the image its worker is at (-1: none), for naming a stuck worker."""

    def __init__(self, count, data_shape):
        data_size, batch = int(np.prod(data_shape)), data_shape[0]
        floats = count * (data_size + batch)
        self._map = mmap.mmap(-1, max(1, floats * 4 + count * 8))
        flat = np.frombuffer(self._map, np.float32, count=floats)
        self.data = flat[:count * data_size].reshape((count,) + tuple(data_shape))
        self.labels = flat[count * data_size:].reshape(count, batch)
        self.reading = np.frombuffer(self._map, np.int64, count=count, offset=floats * 4)


def oom_kill_count():
    """The kernel's count of processes killed by the out-of-memory killer: this cgroup's (cgroup
    v2 memory.events, which a container's memory limit counts in), else the machine's
    (/proc/vmstat); None where neither can be read."""
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
    """Why a worker process ended, in words: a SIGKILL is blamed on the out-of-memory killer only
    when the kernel's oom_kill count rose meanwhile, on another process when it did not."""
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


def _set_parent_death_signal():
    """Make a worker die with its parent even when the parent is killed (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _keep_freed_memory():
    """Serve the per-image arrays (decoded images: ~0.5 MB each) from the heap and keep it, instead
    of mmap-ing fresh zeroed pages for every image: a worker's decode runs ~15% faster (glibc)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 27)  # M_MMAP_THRESHOLD: 128 MB
        libc.mallopt(-1, 1 << 28)  # M_TRIM_THRESHOLD: 256 MB
    except (OSError, AttributeError):
        pass


def _worker_main(fill, slots, tasks, results):
    """A worker's life: fill the batches sent on its own `tasks` pipe, answer on its own
    `results` pipe. Pipes, not shared queues: a worker killed mid-read or mid-write can then
    corrupt or lock only its own pipes, which the parent throws away with it."""
    # Ctrl-C and the preemption signals (which a scheduler may send to every process of the job)
    # are the parent's to handle: it finishes its step with the batches it holds, then stops us.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
    _set_parent_death_signal()
    _keep_freed_memory()
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
    """Run `start()`, which forks processes, with OpenCV's thread pool shut down meanwhile: a
    child that inherits the pool's state without its threads hangs in its first OpenCV call."""
    import gc
    import sys
    import cv2
    mxnet = sys.modules.get("mxnet")
    if mxnet is not None:
        # MXNet's pre-fork handler stops its engine, waiting for every pending operation while
        # this thread holds the GIL; an operation that frees a zero-copy batch needs the GIL to
        # finish, so drain the engine first (waitall releases the GIL) or the fork never returns.
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
    """Runs `fill(task, data_out, label_out) -> (filled, meta)` for a stream of tasks on
    `num_workers` forked processes (inline when 0) and yields (meta, data, label) NDArrays in
    task order, with `data` a zero-copy view of its shared slot while the consumer keeps at most
    `lend` batches alive (the slot is reused only once MXNet frees the array), else a copy.

    A worker that dies (killed, out of memory) is seen within a second, replaced, and the batches
    it owed are filled again by its replacement, so the order and content of the stream do not
    change; `MAX_DEATHS_IN_A_ROW` deaths without a batch delivered in between stop the stream
    with WorkersKeepDying. With `data_timeout` (seconds), a worker that owes the awaited batch
    and sends nothing for that long (stopped, hung in a read) is killed and replaced the same
    way. `stop_requested()`, polled every `_POLL_S` while waiting, ends the stream with
    DataWaitStopped. Neither applies inline (num_workers=0): the fill runs in the caller.

    A fill with `reports_reading = True` is called with a fourth argument, a one-element int64
    array where it notes the index of the image it is at; `describe(task, index)` turns that into
    words for the line naming a stuck worker. Each death is logged and kept in `events` (for a
    log that only rank 0 writes); `label` (e.g. "rank 1") names the process in those lines."""

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
        """An iterator of (meta, data NDArray, label NDArray) for each task, in order (data and
        label are None for a batch a worker could not fill at all). Starting a new map ends the
        previous one, so that results of two streams never mix."""
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
        """Collect results into `done` until batch `seq` is there. The worker owing it is killed
        and replaced when it sends nothing for data_timeout seconds (its replacement gets as
        long again); stop_requested() is asked at least every _POLL_S seconds."""
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
        """Kill (SIGKILL: it also ends a stopped process) and replace a worker that sent nothing
        for `waited` seconds, naming what it was at."""
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
        """End a stream: batches still owed by workers are dropped. Waiting for them could
        block on a worker that never answers, so the workers are killed instead (their work is
        thrown away; the next map forks new ones); finished but unconsumed batches just free
        their slots."""
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
        """The next (seq, slot, meta, error) a worker sends within about `timeout` seconds, or
        None; workers found dead meanwhile are replaced."""
        from multiprocessing.connection import wait
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
        """Replace workers that died since the last look (reported in the log as they are)."""
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
        """End every worker: idle ones exit on their own within `grace` seconds, the rest (busy,
        stopped, hung) are killed; none is left behind."""
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
