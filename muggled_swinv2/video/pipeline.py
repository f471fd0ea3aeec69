"""A threaded frame pipeline that keeps the model busy: read ahead, predict, write behind, in order.

Two ways to run it, both with a reader thread in front:

    reader thread:  frames -> prepare(frame) -> [bounded queue] -> batches of up to batch_size

- `run(sink)` (the `video` job): the model runs in the calling thread, `sink(item)` (colouring,
  encoding) in a writer thread behind a second bounded queue. The model stays in the calling
  thread because PyTorch's CPU kernels run measurably slower (about 15-20% here, with 2 OpenMP
  threads) when started from another thread, and so that Ctrl-C interrupts the model at once.
- `for item in pipeline:` (the webcam demo, whose window must live in the main thread): the model
  runs in a second thread and the caller's loop gets the items.

Either way items are (index, frame, infer result), every frame read comes out exactly once and in
order (the indices are checked), unless `live` is set: then the reader keeps only the newest
frame waiting (a camera should not queue up a backlog), so frames may be skipped, still in
increasing order. The queues are bounded, so a slow stage holds the ones before it back instead
of filling memory.

Errors. An exception in any stage stops the pipeline: the threads are stopped and waited for, so
nothing keeps running in the background, and a `StageError` names the stage ("reader", "model" or
"writer") and the frame. Items before a reader or model error are still delivered first (to the
sink, or to the caller's loop). A KeyboardInterrupt (Ctrl-C) is re-raised as it is, after `run`
has let the writer finish the items already predicted, so what was written is complete.
"""

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

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
    """Raised inside a stage thread when the pipeline is closed while it waits."""


class _Failure:
    def __init__(self, stage: str, index: int, error: BaseException):
        self.stage, self.index, self.error = stage, index, error


_END = object()


class FramePipeline:
    """Frames -> (index, frame, infer result) items, in order, with the stages in threads: call
    `run(sink)` or iterate, once (see the module docstring).

    frames:   an iterable of frames (read in the reader thread)
    prepare:  frame -> model input, run in the reader thread (e.g. resize and normalise)
    infer:    list of prepared inputs -> list of results, one per input (the model stage)
    """

    def __init__(self, frames: Iterable, infer: Callable[[list], list], prepare: Callable | None = None,
                 batch_size: int = 1, queue_size: int = 4, live: bool = False):
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be positive")
        self.frames, self.infer, self.prepare = frames, infer, prepare or (lambda frame: frame)
        self.batch_size, self.live = batch_size, live
        self.prepared = queue.Queue(maxsize=1 if live else max(queue_size, batch_size))
        self.results = queue.Queue(maxsize=max(queue_size, batch_size))
        self.stopping = threading.Event()  # every thread stops
        self.reader_stopping = threading.Event()  # only the reader stops (the writer drains)
        self.frames_read = 0
        self.threads = [threading.Thread(target=self._read, name="frame-reader", daemon=True),
                        threading.Thread(target=self._predict, name="frame-model", daemon=True)]
        self.started = False
        self.next_index = 0

    # ------------------------------------------------------------------ stage threads

    def _put(self, target: queue.Queue, value):
        while not self.stopping.is_set():
            try:
                target.put(value, timeout=_POLL)
                return
            except queue.Full:
                continue
        raise _Stop

    def _put_newest(self, value):
        """Live mode: replace a frame still waiting by the newer one."""
        while True:
            try:
                self.prepared.put_nowait(value)
                return
            except queue.Full:
                try:
                    self.prepared.get_nowait()
                except queue.Empty:
                    pass

    def _get(self, source: queue.Queue):
        while not self.stopping.is_set():
            try:
                return source.get(timeout=_POLL)
            except queue.Empty:
                continue
        raise _Stop

    def _read(self):
        index = 0
        try:
            iterator = iter(self.frames)
            while not (self.stopping.is_set() or self.reader_stopping.is_set()):
                try:
                    frame = next(iterator)
                except StopIteration:
                    break
                item = (index, frame, self.prepare(frame))
                self._put_newest(item) if self.live else self._put(self.prepared, item)
                index += 1
                self.frames_read = index
            self._put(self.prepared, _END)
        except _Stop:
            pass
        except BaseException as error:  # handed to the caller, after the frames before it
            try:
                self._put(self.prepared, _Failure("reader", index, error))
            except _Stop:
                pass

    def _predict(self):
        try:
            ended = False
            while not ended:
                batch = []
                while len(batch) < self.batch_size:
                    entry = self._get(self.prepared)
                    if entry is _END or isinstance(entry, _Failure):
                        ended = entry
                        break
                    batch.append(entry)
                if batch:
                    try:
                        results = self.infer([prepared for _, _, prepared in batch])
                        if len(results) != len(batch):
                            raise RuntimeError(f"infer returned {len(results)} results for {len(batch)} inputs")
                    except BaseException as error:
                        self._put(self.results, _Failure("model", batch[0][0], error))
                        return
                    for (index, frame, _), result in zip(batch, results):
                        self._put(self.results, Item(index, frame, result))
                if ended:
                    self._put(self.results, ended)
        except _Stop:
            pass

    # ------------------------------------------------------------------ run(sink): the model here

    def _write(self, sink):
        while True:
            entry = self._get(self.results)
            if entry is _END:
                return
            try:
                sink(entry)
            except BaseException as error:
                self.writer_failure = _Failure("writer", entry.index, error)
                self.stopping.set()
                return

    def _next_batch(self):
        """Up to batch_size prepared frames, and _END or a reader _Failure if the stream ended."""
        batch = []
        while len(batch) < self.batch_size:
            entry = self._get(self.prepared)
            if entry is _END or isinstance(entry, _Failure):
                return batch, entry
            batch.append(entry)
        return batch, None

    def run(self, sink: Callable[[Item], None]) -> int:
        """Run the model in this thread and `sink(item)` for every frame, in order, in a writer
        thread; returns the number of items the sink took. See the module docstring for errors."""
        if self.started:
            raise RuntimeError("a pipeline runs once")
        self.started, self.writer_failure, delivered = True, None, 0
        writer = threading.Thread(target=self._write, args=(sink,), name="frame-writer", daemon=True)
        self.threads = [self.threads[0], writer]
        for thread in self.threads:
            thread.start()
        try:
            ended = None
            while ended is None:
                batch, ended = self._next_batch()
                if batch:
                    try:
                        results = self.infer([prepared for _, _, prepared in batch])
                        if len(results) != len(batch):
                            raise RuntimeError(f"infer returned {len(results)} results for {len(batch)} inputs")
                    except KeyboardInterrupt:
                        raise
                    except Exception as error:
                        self._drain()  # the frames before it are delivered first
                        raise StageError("model", batch[0][0], error) from error
                    for (index, frame, _), result in zip(batch, results):
                        self._put(self.results, Item(index, frame, result))
                        delivered += 1
            self._drain()
            if isinstance(ended, _Failure):
                raise StageError(ended.stage, ended.index, ended.error) from ended.error
            return delivered
        except KeyboardInterrupt:
            self._drain()  # the frames already predicted are written: the file plays to there
            raise
        except _Stop:  # the writer failed and stopped the pipeline
            pass
        finally:
            self.close()
            if self.writer_failure is not None:
                failure = self.writer_failure
                raise StageError(failure.stage, failure.index, failure.error) from failure.error

    def _drain(self):
        """Let the writer finish what is queued, then stop it."""
        self.reader_stop()
        try:
            self._put(self.results, _END)
            while self.threads[1].is_alive():
                self.threads[1].join(timeout=_POLL)
        except _Stop:
            pass
        except KeyboardInterrupt:  # a second Ctrl-C: stop without waiting
            self.stopping.set()

    def reader_stop(self):
        """Stop reading ahead (the reader thread ends at its next frame)."""
        self.reader_stopping.set()

    # ------------------------------------------------------------------ iteration: the model in a thread

    def start(self):
        if not self.started:
            self.started = True
            for thread in self.threads:
                thread.start()
        return self

    def __iter__(self):
        self.start()
        try:
            while True:
                try:
                    entry = self.results.get(timeout=_POLL)  # a timeout: Ctrl-C gets through at once
                except queue.Empty:
                    if not self.threads[1].is_alive() and self.results.empty():
                        raise RuntimeError("the model thread ended without a result") from None
                    continue
                if entry is _END:
                    return
                if isinstance(entry, _Failure):
                    if isinstance(entry.error, KeyboardInterrupt):
                        raise KeyboardInterrupt
                    raise StageError(entry.stage, entry.index, entry.error) from entry.error
                if entry.index < self.next_index or (not self.live and entry.index != self.next_index):
                    raise RuntimeError(f"frame {entry.index} came out of order (expected {self.next_index})")
                self.next_index = entry.index + 1
                yield entry
        finally:
            self.close()

    def close(self):
        """Stop both threads and wait for them (the model thread finishes its current batch)."""
        self.stopping.set()
        for thread in self.threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
