"""``python -m chuchun``: the same as the ``chuchun`` command."""

from chuchun.cli import main

if __name__ == "__main__":
    main()
