"""Reaching Ray (a local instance or an existing cluster) for a block of work, and Ray's own
output in our terminal."""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import ray
from ray._private import services as ray_services

from ..errors import one_line
from . import RayError, RayOptions


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """RayError unless something answers at a cluster's address: ray.init would wait for minutes."""
    target = address.removeprefix("ray://")
    try:
        if not address.startswith("ray://"):
            target = ray_services.canonicalize_bootstrap_address_or_die(address)  # 'auto', names -> host:port
        host, _, port = target.rpartition(":")
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as error:  # ConnectionError is an OSError
        raise RayError(f"--ray {address}: cannot reach a Ray cluster there ({one_line(error)})") from None


def connect(ray_options: RayOptions) -> None:
    """ray.init for a local instance or an existing cluster. A process already connected to Ray
    (a library caller, the tests) keeps its connection."""
    if ray_options.address is not None:
        check_reachable(ray_options.address)
    if ray.is_initialized():
        return
    settings = dict(log_to_driver=False, logging_level=logging.ERROR)
    try:
        if ray_options.address is None:
            # No dashboard. Worker processes start with the instance (Ray's prestart), so the
            # actors' processes boot while it comes up: 0.7 s sooner to the end of 100 photos on
            # the 2-core machine (three runs each way, alternating). Ray lowers its workers'
            # priority (nice 15) by default; here they are the command's own work, at the
            # priority it was started with.
            ray.init(num_cpus=ray_options.num_cpus, include_dashboard=False,
                     _system_config={"worker_niceness": 0, "enable_worker_prestart": True}, **settings)
        else:
            ray.init(address=ray_options.address, **settings)
    except Exception as error:  # noqa: BLE001  Ray raises plain Exception too (a node that timed out starting)
        what = f"cannot connect to the Ray cluster at {ray_options.address}" if ray_options.address else \
            "cannot start a local Ray instance"
        raise RayError(f"--ray: {what} ({one_line(error)})") from None


class RayOutput:
    """Ray's own lines in this process's terminal (native log lines on file descriptor 2, the
    raylet's reports on stdout), shown or dropped. Dropped for the whole run with --quiet, and
    from Ctrl-C on otherwise (what follows is Ray reporting the actors the interrupt stops); this
    process's own messages reach stderr either way. `restore` puts everything back."""

    def __init__(self, quiet: bool):
        self.saved = None  # (stdout fd, stderr fd, sys.stderr) while silenced
        self.handler = None
        if quiet:
            self.silence()
        if threading.current_thread() is threading.main_thread():
            self.handler = signal.signal(signal.SIGINT, self.interrupted)

    def interrupted(self, signum, frame):
        """The first Ctrl-C stops the run; those after it are ignored, so that the stop (Ray Data's
        executor, then the instance) is never cut short half way, which left Ray's processes
        running and could crash Ray's threads in this process (exit 139)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.silence()
        raise KeyboardInterrupt

    def silence(self):
        if self.saved is not None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = (os.dup(1), os.dup(2), sys.stderr)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        if writes_to_fd(sys.stderr, 2):  # our messages go on to where stderr went
            sys.stderr = open(self.saved[1], "w", buffering=1, closefd=False)

    def restore(self):
        if self.handler is not None:
            signal.signal(signal.SIGINT, self.handler)
        if self.saved is None:
            return
        stdout_fd, stderr_fd, stderr = self.saved
        if sys.stderr is not stderr:
            sys.stderr.close()
            sys.stderr = stderr
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.close(stdout_fd)
        os.close(stderr_fd)
        self.saved = None


def writes_to_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # a stream in memory (pytest's capture, say)
        return False


def stop_local_autoscaler(timeout_s: float = 5.0) -> None:
    """Stop the autoscaler monitor of the local instance this process started, at once.

    ray.shutdown stops the instance's processes one after another, each given a second to exit on
    SIGTERM; the autoscaler monitor (which has nothing to scale on a local instance) never exits in
    that second, so it alone added 1.0 s to every --ray run (measured: shutdown 1.34 s, 0.35 s with
    it killed first). Reached through Ray's private node object: where a Ray release moves it, the
    shutdown is only slower again.
    """
    try:
        from ray._private import ray_constants, worker
        processes = worker._global_node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, [])
    except (ImportError, AttributeError):
        return
    for info in processes:
        if info.process.poll() is None:
            info.process.kill()
            try:
                info.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:  # ray.shutdown gives it its own wait
                pass


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc (empty where there is none)."""
    if not os.path.isdir("/proc"):
        return {}
    table = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as file:
                    fields = file.read().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
            except (OSError, IndexError):
                continue  # exited meanwhile
            table[int(entry.name)] = (int(fields[1]), fields[19])  # ppid; starttime (field 22 of stat)
    return table


def local_instance_processes() -> dict[int, str]:
    """pid -> start time of every process of the local instance this process started: those Ray's
    node object holds (GCS, raylet, monitor, ...) and all their descendants (the actors' workers,
    and the raylet's dashboard and runtime-env agents). Reached through Ray's private node object."""
    try:
        from ray._private import worker
        roots = {info.process.pid for infos in worker._global_node.all_processes.values() for info in infos}
    except (ImportError, AttributeError):
        return {}
    table = process_table()
    children = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return found


def stop_leftovers(processes: dict[int, str], timeout_s: float = 5.0) -> None:
    """Kill those of `processes` (local_instance_processes, taken before ray.shutdown) still running.

    ray.shutdown stops the processes it started; the raylet's agents (ray::DashboardAgent,
    ray::RuntimeEnvAgent) notice their raylet is gone only by polling it, and after a Ctrl-C they
    outlived the command by up to a minute. A pid now naming another process (another start
    time) is left alone."""
    table = process_table()
    leftovers = [pid for pid, started in processes.items() if table.get(pid, (0, None))[1] == started]
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # gone meanwhile
            pass
    deadline = time.monotonic() + timeout_s
    while leftovers and time.monotonic() < deadline:
        leftovers = [pid for pid in leftovers if running(pid)]
        time.sleep(0.01)


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie, waiting to be reaped, has)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@contextmanager
def ray_session(ray_options: RayOptions, quiet: bool = False):
    """Connected to Ray for the block, Ray's output shown or dropped as RayOutput says; a local
    instance started here is stopped after it (a cluster, and a connection the caller already had,
    are left as they were)."""
    output = RayOutput(quiet)
    connecting_here = not ray.is_initialized()
    try:
        connect(ray_options)
        yield
    finally:
        try:
            if connecting_here and ray.is_initialized():
                local = local_instance_processes() if ray_options.address is None else {}
                try:
                    if ray_options.address is None:
                        stop_local_autoscaler()
                finally:
                    ray.shutdown()  # stops a local instance; leaves a cluster (and its other jobs) running
                    stop_leftovers(local)
        finally:
            output.restore()
