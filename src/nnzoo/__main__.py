import sys

from .cli import main

# Guarded: where processes are spawned rather than forked (Windows; the image decoding pool), each child imports
# the parent's main module as __mp_main__, and an unguarded main() would run the whole command again in it.
if __name__ == "__main__":
    sys.exit(main())
