#!/usr/bin/env python3
"""Convert a checkpoint to muggled_swinv2's safetensors format (or to Hugging Face's):
the same as `muggled-swinv2 convert IN OUT [--dtype ...] [--to muggled|hf] [--overwrite]`."""

import sys

from muggled_swinv2.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
