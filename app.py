"""Start the web chat on http://127.0.0.1:7860 (see `qa serve --help` for options)."""

import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
