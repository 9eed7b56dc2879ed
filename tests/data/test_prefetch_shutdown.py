"""Stopping the data workers never waits on a half-written batch: a worker stopped while its
feeder thread was writing leaves a partial message in the pipe, and shutdown must not read it."""
import multiprocessing
import struct
import threading

from fassst.data.prefetch import _shutdown


def test_shutdown_returns_with_half_a_batch_in_the_pipe():
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue(maxsize=2)
    # What a killed feeder leaves: the length header of a 569344-byte message and 4 bytes of it.
    q._writer.send_bytes(b"")  # a whole (empty) message first, so the pipe is known to work
    q._reader.recv_bytes()
    q._writer._send(struct.pack("!i", 569344) + b"abcd")
    done = threading.Event()
    t = threading.Thread(target=lambda: (_shutdown(ctx.Event(), [], [q]), done.set()),
                         daemon=True)
    t.start()
    t.join(timeout=10)
    assert done.is_set(), "shutdown blocked reading a partial message"
