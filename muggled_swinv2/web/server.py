"""Starting the web app: the address checked before the model loads, Gradio's environment, one
temporary folder for uploads and results (removed when the server stops, Ctrl-C or SIGTERM, once
the request in flight has ended), the queue, and the launch.

Gradio is imported only inside serve(), after its environment is set (it reads it when imported).
"""

import errno
import importlib.util
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, one_line
from .service import DepthService, Limits, ModelInfo

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
STOP_TIMEOUT_S = 60.0  # how long Ctrl-C waits for the request in flight (a video ends at its next frame)


class ServeError(UserError):
    """The server cannot start (its address); a one-line message naming the option at fault."""


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 7860
    limits: Limits = field(default_factory=Limits)
    queue_size: int = 64  # requests waiting beyond this are turned away ("queue is full")


def host_warning(host: str) -> str | None:
    if host in LOCAL_HOSTS:
        return None
    return (f"warning: --host {host} makes the app reachable from other machines on the network; "
            f"it has no login and runs the model for anyone who can reach it")


def gradio_installed() -> bool:
    """Whether the [web] extra is there, without importing Gradio (which reads its environment,
    and creates its temporary folder, when imported)."""
    return importlib.util.find_spec("gradio") is not None


def check_address(host: str, port: int):
    """ServeError unless this process can listen on host:port, found before minutes of model
    loading (bound and released at once, as the server will bind it: SO_REUSEADDR)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        raise ServeError(f"--host {host}: not an address of this machine ({one_line(error)})") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                reason = f"--port {port}: {host}:{port} is already in use (another server?); choose another --port"
            elif error.errno == errno.EACCES:
                reason = f"--port {port}: not allowed to listen on it (ports below 1024 need privileges); choose another --port"
            elif error.errno == errno.EADDRNOTAVAIL:
                reason = f"--host {host}: not an address of this machine"
            else:
                reason = f"--host {host} --port {port}: cannot listen there ({one_line(error)})"
            raise ServeError(reason) from None


def gradio_environment(workdir: Path):
    """No analytics or update checks, no share link, every upload and cached result in `workdir`."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_SHARE"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")
    os.environ.pop("GRADIO_SSR_MODE", None)


def serve(model, info: ModelInfo, options: ServeOptions):
    """Run the app until Ctrl-C or SIGTERM; then the request in flight ends, and the temporary
    folder goes. ServeError when the address cannot be listened on."""
    workdir = Path(tempfile.mkdtemp(prefix="muggled-swinv2-serve-"))
    previous = {number: signal.signal(number, _interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    service = None
    try:
        gradio_environment(workdir)
        from .app import EXAMPLES, THEME, build_app  # Gradio reads its environment when imported

        service = DepthService(model, info, options.limits, workdir)
        service.warm_up()
        demo = build_app(service)
        demo.queue(max_size=options.queue_size, default_concurrency_limit=1)
        print(f"muggled-swinv2 serve: {info.variant} on {info.device}; temporary files in {workdir}", file=sys.stderr, flush=True)
        try:
            demo.launch(
                server_name=options.host, server_port=options.port, share=False, inbrowser=False,
                max_file_size=int(options.limits.max_upload_mb * 1e6), show_error=False,
                allowed_paths=[str(service.results), str(EXAMPLES)], ssr_mode=False, mcp_server=False,
                footer_links=["api", "settings"], theme=THEME, quiet=True, prevent_thread_lock=True,
            )
        except OSError as error:  # taken since the first check: say why (Gradio's message names its own variables)
            check_address(options.host, options.port)
            raise ServeError(f"--host {options.host} --port {options.port}: cannot listen there ({one_line(error)})") from None
        print(f"open {demo.local_url} in a browser; Ctrl-C stops the server", file=sys.stderr, flush=True)
        demo.block_thread()  # returns on Ctrl-C or SIGTERM, the server closed
    finally:
        for number in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(number, signal.SIG_IGN)
        if service is not None and not service.stop(STOP_TIMEOUT_S):
            print(f"muggled-swinv2 serve: the request in flight did not end within {STOP_TIMEOUT_S:g} s; "
                  f"stopping anyway", file=sys.stderr, flush=True)
            remove_folder(workdir)
            os._exit(1)  # exiting normally under a running job would abort the process
        remove_folder(workdir)
        for number, handler in previous.items():
            signal.signal(number, handler)


def remove_folder(folder, attempts: int = 20) -> None:
    """Remove the server's temporary folder: again while something is still writing into it (the
    web framework's threads may be storing an upload as the server closes), at most `attempts` times."""
    for _ in range(attempts):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.exists(folder):
            return
        time.sleep(0.1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # Gradio's block_thread() closes the server on it; serve() then cleans up
