"""`muggled-swinv2 download [VARIANT]`: fetch an official MiDaS v3.1 checkpoint."""

from ..model.config import RELEASE_URL, RELEASES  # (imports PyTorch: built only when `download` is asked for)
from .arguments import add_quiet_argument



def add_arguments(parser):
    parser.add_argument("variant", nargs="?", default="tiny", choices=RELEASES,
                        help="which release: " + ", ".join(f"{name} ({release.file_name}, {release.file_mib} MiB)"
                                                           for name, release in RELEASES.items()) + " (default: tiny)")
    parser.add_argument("--dir", help="folder to save into (default: $XDG_CACHE_HOME/muggled_swinv2, "
                        "else ~/.cache/muggled_swinv2)")
    parser.add_argument("--base-url", default=RELEASE_URL, help=f"mirror to download from (default: {RELEASE_URL})")
    add_quiet_argument(parser, "no progress bar")


def run(args) -> int:
    from ..formats.weights import download

    path, checked = download(args.variant, args.dir, base_url=args.base_url, quiet=args.quiet)
    print(f"{path}: ready ({path.stat().st_size / 2**20:.1f} MiB; {checked})")
    return 0
