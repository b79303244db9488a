"""Start Fine-Tune Studio: `python app.py [--host H] [--port P] [--share --auth user:pass] [--demo-only]`.

Thin on purpose: flags and launch live in studio.launch, the UI in studio.ui.
"""

import sys

from studio.launch import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
