"""The image job over a Ray cluster with Ray Data (`muggled-swinv2 image ... --ray [ADDRESS]`).

Optional: needs the `[ray]` extra (`ray[data]`). Importing this package never imports Ray; the
pipeline lives in `ray_images`, imported by `run_on_ray` once Ray is known to be there.
"""

from dataclasses import dataclass

from ..errors import UserError

INSTALL_HINT = "pip install 'muggled_swinv2[ray]' (or: pip install 'ray[data]')"


class RayError(UserError):
    """Ray missing, a cluster that cannot be reached, or a pipeline that cannot start (one line)."""


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local Ray instance on this machine
    actors: int | None = None  # model actors, one model load each (None: see ray_images.actor_layout)
    gpus_per_actor: float = 0.0
    cpus_per_actor: float | None = None  # None: see ray_images.actor_layout
    device: str = "auto"  # auto: cuda with --gpus-per-actor, else cpu
    dtype: str = "float32"
    num_cpus: int | None = None  # CPUs of the local instance (default: this machine's)


def require_ray():
    """Ray and Ray Data, or a RayError saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401  (ray without its [data] extra lacks pyarrow, pandas, ...)
    except ImportError as error:
        raise RayError(f"--ray needs Ray Data, which is not installed ({error.name or error}): {INSTALL_HINT}") from None
    return ray


def run_on_ray(weights, tasks, options, ray_options: RayOptions, quiet: bool = False):
    """ray_images.run_image_job_on_ray, after checking the device choice here (not on every actor)
    and that Ray is installed."""
    gpus = ray_options.gpus_per_actor
    device = ray_options.device if ray_options.device != "auto" else ("cuda" if gpus else "cpu")
    if device.startswith("cuda") and not gpus:
        raise RayError("--device cuda with --ray needs --gpus-per-actor (Ray gives GPUs only to actors that ask)")
    if not device.startswith("cuda"):
        from ..devices import select_device, select_dtype

        select_dtype(ray_options.dtype, select_device(device))  # float16 on a CPU: refused here, not on every actor
    require_ray()
    from .ray_images import run_image_job_on_ray

    return run_image_job_on_ray(weights, tasks, options, ray_options, quiet=quiet)
