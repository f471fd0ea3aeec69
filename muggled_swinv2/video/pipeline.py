"""A threaded frame pipeline that keeps the model busy: read ahead, predict, hand back in order.

    reader thread:  frames -> prepare(frame) -> [bounded queue] ->
    model thread:   batches of up to batch_size -> infer(prepared items) -> [bounded queue] ->
    the caller:     `for item in pipeline:` gets (index, frame, result) in frame order

The caller's loop is the last stage (colouring, encoding, display): it runs while the model
works on the next batch. The queues are bounded, so a slow stage holds the ones before it back
instead of filling memory. Every frame read comes out exactly once and in order (the indices are
checked), unless `live` is set: then the reader keeps only the newest frame waiting (a camera
should not queue up a backlog), so frames may be skipped, still in increasing order.

Errors. An exception in the reader or the model thread stops the pipeline; the caller first gets
the results of the frames before it, then a `StageError` naming the stage and the frame (a
KeyboardInterrupt raised in a stage is re-raised as it is). An exception in the caller's loop,
Ctrl-C included, or leaving the loop early: `close()` (called by `with` and when the iteration
ends) stops both threads, and waits for them, so nothing keeps running in the background.
"""

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

_POLL = 0.05  # seconds between checks of the stop flag while waiting on a queue


class StageError(Exception):
    """A stage of the pipeline failed: `stage` ("reader" or "model"), the 0-based frame `index`
    it failed at (the first frame of the batch for the model), and the original `error`."""

    def __init__(self, stage: str, index: int, error: BaseException):
        self.reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]  # one line
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
    """Iterate over (index, frame, infer result) with reading, preparing and inference running
    ahead in two threads.

    frames:   an iterable of frames (read in the reader thread)
    prepare:  frame -> model input, run in the reader thread (e.g. resize and normalise)
    infer:    list of prepared inputs -> list of results, one per input, run in the model thread
    """

    def __init__(self, frames: Iterable, infer: Callable[[list], list], prepare: Callable | None = None,
                 batch_size: int = 1, queue_size: int = 4, live: bool = False):
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be positive")
        self.frames, self.infer, self.prepare = frames, infer, prepare or (lambda frame: frame)
        self.batch_size, self.live = batch_size, live
        self.prepared = queue.Queue(maxsize=1 if live else max(queue_size, batch_size))
        self.results = queue.Queue(maxsize=max(queue_size, batch_size))
        self.stopping = threading.Event()
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
            while not self.stopping.is_set():
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

    # ------------------------------------------------------------------ the caller's side

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
