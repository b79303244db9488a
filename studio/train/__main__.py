"""Entry point of the worker subprocess: `python -m studio.train RUN_DIR [--resume]`."""

import sys

from studio.train.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
