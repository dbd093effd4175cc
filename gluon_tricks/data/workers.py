"""Forked worker processes that fill whole batches straight into shared memory, ahead of use.

Why not mx.gluon.data.DataLoader: its workers pickle every batch back through a pipe or /dev/shm
(which Docker caps at 64 MB). Here the batch buffers are one anonymous shared mapping made before
the fork: a worker writes its batch in place and sends back a few numbers, and the consumer gets
the batch as a zero-copy NDArray. Workers run numpy/OpenCV only, never MXNet. Fork, not spawn or
forkserver: nothing is pickled and a script without `if __name__ == "__main__"` still works; the
one fork hazard met here, OpenCV's thread pool (a child inheriting it hangs), is shut first.
"""
import collections
import mmap
import multiprocessing
import os
import queue
import signal
import traceback
import weakref

import numpy as np

_POLL_S = 5.0


class WorkerError(RuntimeError):
    """A data worker failed or died."""


class _Slots:
    """`count` (data, label) float32 buffers in one shared anonymous mapping (kept by forks)."""

    def __init__(self, count, data_shape):
        data_size, batch = int(np.prod(data_shape)), data_shape[0]
        self._map = mmap.mmap(-1, max(1, count * (data_size + batch) * 4))
        flat = np.frombuffer(self._map, np.float32, count=count * (data_size + batch))
        self.data = flat[:count * data_size].reshape((count,) + tuple(data_shape))
        self.labels = flat[count * data_size:].reshape(count, batch)


def _set_parent_death_signal():
    """Make a worker die with its parent even when the parent is killed (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _set_parent_death_signal()
    _keep_freed_memory()
    import cv2
    cv2.setNumThreads(1)  # one worker = one core; OpenCV's own threads would oversubscribe
    while True:
        item = tasks.get()
        if item is None:
            return
        seq, slot, task = item
        try:
            meta = fill(task, slots.data[slot], slots.labels[slot])  # (filled, meta)
            results.put((seq, slot, meta, None))
        except Exception:  # pylint: disable=broad-except
            results.put((seq, slot, None, traceback.format_exc()))


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


class WorkerPool:
    """Runs `fill(task, data_out, label_out) -> (filled, meta)` for a stream of tasks on
    `num_workers` forked processes (inline when 0) and yields (meta, data, label) NDArrays in
    task order, with `data` a zero-copy view of its shared slot while the consumer keeps at most
    `lend` batches alive (the slot is reused only once MXNet frees the array), else a copy."""

    def __init__(self, fill, num_workers, data_shape, prefetch=2, lend=2):
        self.fill = fill
        self.num_workers = int(num_workers)
        self.data_shape = tuple(data_shape)
        self.lend = lend
        self.num_slots = max(1, self.num_workers + prefetch) + lend
        self._slots = None
        self._procs = []
        self._tasks = self._results = None
        self._free = self._lent = None
        self._active = None  # weak reference to the running map's generator

    def _start(self):
        self._slots = _Slots(self.num_slots, self.data_shape)
        self._free, self._lent = collections.deque(range(self.num_slots)), set()
        if self.num_workers == 0:
            return
        context = multiprocessing.get_context("fork")
        self._tasks, self._results = context.Queue(), context.Queue()
        for _ in range(self.num_workers):
            proc = context.Process(target=_worker_main, daemon=True,
                                   args=(self.fill, self._slots, self._tasks, self._results))
            fork_workers(proc.start)
            self._procs.append(proc)

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
                    return
                while next_seq not in done:
                    seq, slot, meta, error = self._get()
                    if error is not None:
                        raise WorkerError("data worker failed:\n" + error)
                    done[seq] = (slot, meta)
                slot, (filled, meta) = done.pop(next_seq)
                next_seq += 1
                if filled == 0:
                    self._free.append(slot)
                    yield meta, None, None
                    continue
                data, label = self._hand_over(slot, filled)
                yield meta, data, label
        finally:
            # An abandoned or failed epoch: wait for the batches in flight so that their
            # results never reach the next epoch.
            for _ in range(submitted - next_seq - len(done)):
                try:
                    seq, slot, _, _ = self._get()
                    self._free.append(slot)
                except WorkerError:
                    break
            self._free.extend(slot for slot, _ in done.values())

    def _submit(self, seq, slot, task, done):
        if self.num_workers == 0:
            done[seq] = (slot, self.fill(task, self._slots.data[slot], self._slots.labels[slot]))
        else:
            self._tasks.put((seq, slot, task))

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

    def _get(self):
        if self.num_workers == 0:
            raise WorkerError("no data worker is running")
        while True:
            try:
                return self._results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    self.close()
                    raise WorkerError("data worker %d died with exit code %s (out of memory?)"
                                      % (dead[0].pid, dead[0].exitcode)) from None

    def close(self):
        """Stop the workers (they also stop when the parent exits)."""
        procs, self._procs = self._procs, []
        for _ in procs:
            try:
                self._tasks.put(None)
            except (OSError, ValueError):
                pass
        for proc in procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
        self._slots = None

    def __del__(self):
        if self._procs:
            self.close()


def _give_back(free, lent, slot):
    lent.discard(slot)
    free.append(slot)
