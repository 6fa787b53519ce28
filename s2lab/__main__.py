"""``python -m s2lab ...`` (and ``torchrun -m s2lab ...``): the same as the ``s2lab`` command."""

import sys

from s2lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
