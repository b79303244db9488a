"""Entry point of the worker subprocess: `python -m studio.train RUN_DIR [--resume]`.

It leaves with os._exit once the run's final status is written: interpreter teardown can wait
forever on a library's non-daemon thread, and a worker that lingers would hold GPU memory.
"""

import os
import sys

from studio.train.worker import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
