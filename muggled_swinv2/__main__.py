import sys

try:
    from .cli import run_and_exit
except KeyboardInterrupt:  # Ctrl-C while Python is still importing: one line, not a traceback
    print("interrupted", file=sys.stderr)
    sys.exit(130)

run_and_exit()
