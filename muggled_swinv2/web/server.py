"""Starting the web app: Gradio's environment, one temporary folder for uploads and results
(removed when the server stops, Ctrl-C or SIGTERM), the queue, and the launch.

Gradio is imported only inside serve(), after its environment is set.
"""

import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .service import DepthService, Limits, ModelInfo

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


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


def gradio_environment(workdir: Path):
    """No analytics or update checks, no share link, every upload and cached result in `workdir`."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_SHARE"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")
    os.environ.pop("GRADIO_SSR_MODE", None)


def serve(model, info: ModelInfo, options: ServeOptions):
    """Run the app until Ctrl-C or SIGTERM; the temporary folder goes with it."""
    workdir = Path(tempfile.mkdtemp(prefix="muggled-swinv2-serve-"))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        gradio_environment(workdir)
        from .app import THEME, build_app  # Gradio reads its environment when imported

        service = DepthService(model, info, options.limits, workdir)
        service.warm_up()
        demo = build_app(service)
        demo.queue(max_size=options.queue_size, default_concurrency_limit=1)
        print(f"muggled-swinv2 serve: {info.variant} on {info.device}; temporary files in {workdir}", file=sys.stderr, flush=True)
        demo.launch(
            server_name=options.host, server_port=options.port, share=False, inbrowser=False,
            max_file_size=int(options.limits.max_upload_mb * 1e6), show_error=False,
            allowed_paths=[str(service.results)], ssr_mode=False, mcp_server=False,
            footer_links=["api", "settings"], theme=THEME, quiet=True, prevent_thread_lock=True,
        )
        print(f"open {demo.local_url} in a browser; Ctrl-C stops the server", file=sys.stderr, flush=True)
        demo.block_thread()
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # Gradio's launch() closes the server on it; serve() then cleans up
