"""Batches built ahead of time in worker processes, delivered in order 0, 1, 2, ...

Worker w of W builds batches w, w + W, w + 2W, ... into its own bounded queue (`depth` batches),
and the consumer reads batch k from queue k mod W: in-order delivery with no reordering buffer,
and a worker blocks once it is `depth` batches ahead. Since batch k is a pure function of
(settings, k) (fassst.data.pipeline), the stream is the same for any W, and W = 0 builds
each batch in the calling process.

Processes are started with "spawn", not fork: the parent has Caffe, OpenBLAS and OpenCV thread
pools, which a forked child inherits in a broken state. A worker's exception is sent to the
consumer and raised there (same type and message, e.g. naming an unreadable image); the worker's
traceback is printed too unless the error is the project's own (fassst.errors: bad input).
"""
import multiprocessing
import os
import queue
import sys
import traceback
import weakref

from fassst.data.pipeline import BatchMaker
from fassst.errors import FassstError


def _worker_main(params, worker, workers, out, stop):
    # Also stop when the consumer is gone without a word: a program killed, or one that never
    # runs Python's exit handlers (the `caffe` tool embeds Python and does not finalise it).
    parent = multiprocessing.parent_process()
    running = lambda: not stop.is_set() and parent.is_alive()  # noqa: E731
    try:
        maker = BatchMaker(params)
        k = params.get("start_batch", 0) + worker
        while running():
            item = ("batch", k, maker.batch(k))
            while running():
                try:
                    out.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            k += workers
        # Stopped: batches still buffered for the pipe are not wanted, and flushing them would
        # block this process's exit (nobody reads any more).
        out.cancel_join_thread()
    except BaseException as e:  # noqa: B902 - everything goes to the consumer
        try:
            out.put(("error", e, traceback.format_exc()), timeout=5)
        except Exception:
            pass


def _python_executable():
    """The interpreter for spawned workers: the same Python as this process. Under an embedding
    program (the `caffe` tool) sys.executable is only a guess from PATH; measured here, the tool
    linked to Debian's libpython 3.11 guessed pyenv's python3 shim, whose children then failed
    to import numpy with the parent's sys.path. The running Python's files live under
    sys.prefix, so an executable elsewhere is replaced by <base_prefix>/bin/pythonX.Y."""
    exe = sys.executable
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}
    if exe and any(os.path.realpath(exe).startswith(p + os.sep) for p in prefixes):
        return exe
    own = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
    return own if os.path.isfile(own) else exe


def _shutdown(stop, procs, queues, wait=5.0):
    # Nothing is read from the queues here: a worker stopped while its feeder thread was writing
    # a batch leaves half a message in the pipe, and reading it blocks forever (measured: the
    # demo hung at exit in os.read of a 569344-byte batch). Workers never block on a full queue
    # (their put has a timeout and they check `stop`), so setting it and waiting is enough.
    stop.set()
    for p in procs:
        p.join(timeout=wait)
        if p.is_alive():
            p.terminate()
            p.join(timeout=wait)
    for q in queues:
        q.close()
        q.cancel_join_thread()


class Prefetcher:
    """Iterator over BatchMaker(params).batch(s), batch(s + 1), ... with s = params'
    start_batch (a resumed run's position); close() stops the workers."""

    def __init__(self, params, workers, depth=2):
        self.workers = workers
        self._start = self._k = params.get("start_batch", 0)
        if workers == 0:
            self._maker = BatchMaker(params)
            return
        ctx = multiprocessing.get_context("spawn")
        exe = _python_executable()
        if exe and exe != sys.executable:
            ctx.set_executable(exe)
        self._stop = ctx.Event()
        self._queues = [ctx.Queue(maxsize=depth) for _ in range(workers)]
        self._procs = [ctx.Process(target=_worker_main, daemon=True, name=f"fassst-data-{w}",
                                   args=(params, w, workers, self._queues[w], self._stop))
                       for w in range(workers)]
        for p in self._procs:
            p.start()
        self._finalizer = weakref.finalize(self, _shutdown, self._stop, self._procs, self._queues)

    def __iter__(self):
        return self

    def __next__(self):
        k = self._k
        self._k += 1
        if self.workers == 0:
            return self._maker.batch(k)
        w = (k - self._start) % self.workers
        while True:
            try:
                item = self._queues[w].get(timeout=1.0)
                break
            except queue.Empty:
                if not self._procs[w].is_alive():
                    raise RuntimeError(f"data worker {w} died (exit code "
                                       f"{self._procs[w].exitcode}) before batch {k}") from None
        if item[0] == "error":
            self.close()
            err, tb = item[1], item[2]
            if not isinstance(err, FassstError):  # a bug: where it happened is in the worker
                print(f"[fassst.data] worker {w} failed:\n{tb}", file=sys.stderr)
            raise err
        if item[1] != k:
            raise RuntimeError(f"data worker {w} sent batch {item[1]}, expected {k}")
        return item[2]

    def close(self):
        if self.workers:
            self._finalizer()
