"""Frame pipelines that keep the model busy: read ahead, predict in batches, deliver behind, in order.

Two programs share the parts below (a reader thread in front, bounded queues between the stages,
and one batching loop, `predict_in_batches`):

- `run_pipelined(frames, infer, sink)`, for the `video` job:

      reader thread: frames -> prepare -> [queue] -> this thread: batches -> infer -> [queue] -> writer thread: sink

  The model runs in the calling thread because PyTorch's CPU kernels run measurably slower (about
  15-20% here, with 2 OpenMP threads) when started from another thread, and so that Ctrl-C
  interrupts the model at once. Every frame read reaches the sink exactly once and in order.
- `LivePipeline`, for the webcam demo, whose window must live in the main thread: the model runs
  in a thread and the caller's loop gets the items. From a camera (`newest_only`) at most one frame
  waits for the model (a newer frame replaces it, so frames are skipped, still in increasing
  order) and at most one result waits for the caller: what is shown is never more than one of the
  caller's frames behind. From a file every frame comes, in order.

Items are (index, frame, infer result). The queues are bounded, so a slow stage holds the ones
before it back instead of filling memory.

Errors. An exception in any stage stops the pipeline: the threads are stopped and waited for, so
nothing keeps running in the background, and a `StageError` names the stage ("reader", "model" or
"writer") and the frame. Items before a reader or model error are still delivered first (to the
sink, or to the caller's loop). A KeyboardInterrupt (Ctrl-C) is re-raised as it is, after
`run_pipelined` has let the writer finish the items already predicted, so what was written is
complete.
"""

import contextlib
import itertools
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import cv2

from ..errors import first_line

_POLL = 0.05  # seconds between checks of the stop flag while waiting on a queue


class StageError(Exception):
    """A stage of the pipeline failed: `stage` ("reader", "model" or "writer"), the 0-based frame
    `index` it failed at (the first frame of the batch for the model), and the original `error`."""

    def __init__(self, stage: str, index: int, error: BaseException):
        self.reason = first_line(error)
        super().__init__(f"{stage} failed at frame {index + 1} ({self.reason})")
        self.stage, self.index, self.error = stage, index, error


@dataclass
class Item:
    index: int  # 0-based position of the frame in the source
    frame: Any  # the frame as read
    result: Any  # what infer returned for it


class _Stop(Exception):
    """Raised inside a stage when the pipeline is stopped while it waits on a queue."""


class _Failure:
    """An error passed down a queue to the stage after it (a KeyboardInterrupt from a stage thread too)."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class _Channel:
    """A bounded queue between two stages whose waits give up (_Stop) once `stopping` is set."""

    def __init__(self, size: int, stopping: threading.Event):
        self.queue, self.stopping = queue.Queue(maxsize=size), stopping

    def put(self, value):
        while not self.stopping.is_set():
            try:
                self.queue.put(value, timeout=_POLL)
                return
            except queue.Full:
                continue
        raise _Stop

    def put_newest(self, value):
        """Put `value`, replacing what still waits in a full queue (a camera's old frame)."""
        while True:
            try:
                self.queue.put_nowait(value)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    pass

    def get(self):
        while not self.stopping.is_set():
            try:
                return self.queue.get(timeout=_POLL)
            except queue.Empty:
                continue
        raise _Stop


class _Reader:
    """The reader thread: (index, frame, prepare(frame)) entries into a channel, then _END, or the
    reader's StageError after the frames read before it."""

    def __init__(self, frames: Iterable, prepare: Callable | None, size: int, newest_only: bool,
                 stopping: threading.Event):
        self.frames, self.prepare, self.newest_only = frames, prepare or (lambda frame: frame), newest_only
        self.channel = _Channel(size, stopping)
        self.stopping, self.reading = stopping, True
        self.failure: StageError | None = None
        self.thread = threading.Thread(target=self._read, name="frame-reader", daemon=True)

    def _read(self):
        index = 0
        try:
            iterator = iter(self.frames)
            while self.reading and not self.stopping.is_set():
                try:
                    frame = next(iterator)
                except StopIteration:
                    break
                entry = (index, frame, self.prepare(frame))
                self.channel.put_newest(entry) if self.newest_only else self.channel.put(entry)
                index += 1
            self.channel.put(_END)
        except _Stop:
            pass
        except BaseException as error:  # handed on, after the frames before it
            try:
                self.channel.put(_Failure(StageError("reader", index, error)))
            except _Stop:
                pass

    def entries(self) -> Iterator[tuple[int, Any, Any]]:
        """The entries in order, until the end of the frames or a reader error (kept in `failure`)."""
        while True:
            entry = self.channel.get()
            if entry is _END:
                return
            if isinstance(entry, _Failure):
                self.failure = entry.error
                return
            yield entry

    def stop_reading(self):
        """Read no further frames (the thread ends at its next frame)."""
        self.reading = False


def predict_in_batches(entries: Iterable[tuple[int, Any, Any]], infer: Callable[[list], list],
                       batch_size: int) -> Iterator[Item]:
    """The batching loop of both pipelines: (index, frame, prepared) entries -> Items in order, with
    `infer` on batches of up to batch_size prepared inputs (a short one at the end). An exception of
    infer becomes StageError("model") at the batch's first frame; KeyboardInterrupt passes as it is."""
    batch = []
    for entry in itertools.chain(entries, [None]):  # None: the end, for the last short batch
        if entry is not None:
            batch.append(entry)
        if batch and (entry is None or len(batch) == batch_size):
            try:
                results = infer([prepared for _, _, prepared in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"infer returned {len(results)} results for {len(batch)} inputs")
            except Exception as error:
                raise StageError("model", batch[0][0], error) from error
            for (index, frame, _), result in zip(batch, results):
                yield Item(index, frame, result)
            batch = []


class _Writer:
    """The writer thread: sink(item) for each item of its channel until _END; a sink error stops
    the whole pipeline and is kept in `failure`."""

    def __init__(self, sink: Callable[[Item], None], size: int, stopping: threading.Event):
        self.sink, self.stopping = sink, stopping
        self.channel = _Channel(size, stopping)
        self.failure: StageError | None = None
        self.thread = threading.Thread(target=self._write, name="frame-writer", daemon=True)

    def _write(self):
        try:
            while (item := self.channel.get()) is not _END:
                try:
                    self.sink(item)
                except BaseException as error:
                    self.failure = StageError("writer", item.index, error)
                    self.stopping.set()
                    return
        except _Stop:
            pass

    def finish(self):
        """Let the writer take what is queued, then end it."""
        try:
            self.channel.put(_END)
            while self.thread.is_alive():
                self.thread.join(timeout=_POLL)
        except _Stop:  # the pipeline was stopped (the writer failed)
            pass
        except KeyboardInterrupt:  # a second Ctrl-C: stop without waiting
            self.stopping.set()


def run_pipelined(frames: Iterable, infer: Callable[[list], list], sink: Callable[[Item], None],
                  prepare: Callable | None = None, batch_size: int = 1, queue_size: int = 4) -> int:
    """Read `frames` and `prepare` each (frame -> model input) in a reader thread, `infer` (list of
    prepared inputs -> list of results) in this thread on batches of up to batch_size, and
    `sink(item)` every frame, in order, in a writer thread; returns the number of items given to
    the sink. Up to queue_size frames wait between two stages. See the module docstring for errors."""
    if batch_size < 1 or queue_size < 1:
        raise ValueError("batch_size and queue_size must be positive")
    stopping = threading.Event()
    size = max(queue_size, batch_size)
    reader = _Reader(frames, prepare, size, False, stopping)
    writer = _Writer(sink, size, stopping)
    reader.thread.start()
    writer.thread.start()
    delivered = 0
    try:
        try:
            for item in predict_in_batches(reader.entries(), infer, batch_size):
                writer.channel.put(item)
                delivered += 1
            if reader.failure is not None:
                raise reader.failure from reader.failure.error
        finally:  # the frames predicted before an error or a Ctrl-C are written: the file plays to there
            reader.stop_reading()
            writer.finish()
    except _Stop:  # the writer failed and stopped the pipeline
        pass
    finally:
        stopping.set()
        for thread in (reader.thread, writer.thread):
            thread.join()
        if writer.failure is not None:
            raise writer.failure from writer.failure.error
    return delivered


class LivePipeline:
    """Frames -> Items in the caller's loop, with the reader and the model in threads (see the
    module docstring); iterate once, or use as a context manager and iterate.

    frames:      an iterable of frames (read in the reader thread)
    infer:       list of prepared inputs -> list of results, one per input (the model thread)
    prepare:     frame -> model input, in the reader thread (e.g. resize and normalise)
    newest_only: a camera: at most one frame waits for the model and one result for the caller, a
                 newer frame replacing a waiting one (batches of one)
    """

    def __init__(self, frames: Iterable, infer: Callable[[list], list], prepare: Callable | None = None,
                 batch_size: int = 1, queue_size: int = 4, newest_only: bool = False):
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be positive")
        if newest_only and batch_size > 1:
            raise ValueError("a live camera takes batches of one (only the newest frame waits)")
        self.infer, self.batch_size, self.newest_only = infer, batch_size, newest_only
        size = 1 if newest_only else max(queue_size, batch_size)
        self.stopping = threading.Event()
        self.reader = _Reader(frames, prepare, size, newest_only, self.stopping)
        self.results = _Channel(size, self.stopping)
        self.model_thread = threading.Thread(target=self._predict, name="frame-model", daemon=True)
        self.started = False

    def _predict(self):
        try:
            try:
                for item in predict_in_batches(self.reader.entries(), self.infer, self.batch_size):
                    self.results.put(item)
            except (StageError, KeyboardInterrupt) as error:
                self.results.put(_Failure(error))
                return
            self.results.put(_END if self.reader.failure is None else _Failure(self.reader.failure))
        except _Stop:
            pass

    def start(self) -> "LivePipeline":
        if not self.started:
            self.started = True
            self.reader.thread.start()
            self.model_thread.start()
        return self

    def __iter__(self) -> Iterator[Item]:
        self.start()
        next_index = 0
        try:
            while True:
                try:
                    entry = self.results.queue.get(timeout=_POLL)  # a timeout: Ctrl-C gets through at once
                except queue.Empty:
                    if not self.model_thread.is_alive() and self.results.queue.empty():
                        raise RuntimeError("the model thread ended without a result") from None
                    continue
                if entry is _END:
                    return
                if isinstance(entry, _Failure):
                    if isinstance(entry.error, KeyboardInterrupt):
                        raise KeyboardInterrupt
                    raise entry.error from entry.error.error
                if entry.index < next_index or (not self.newest_only and entry.index != next_index):
                    raise RuntimeError(f"frame {entry.index} came out of order (expected {next_index})")
                next_index = entry.index + 1
                yield entry
        finally:
            self.close()

    def close(self):
        """Stop both threads and wait for them (the model thread finishes its current batch)."""
        self.stopping.set()
        for thread in (self.reader.thread, self.model_thread):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()

    def __enter__(self) -> "LivePipeline":
        return self.start()

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def one_opencv_thread():
    """OpenCV without its own thread pool for the duration: its idle workers spin, taking CPU from
    the model (measured: 13% of the frame rate of tiny@256 on 2 cores), while the pipeline
    already runs OpenCV's work beside the model."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["LivePipeline", "StageError", "one_opencv_thread", "run_pipelined"]
