"""``python -m pypaddle``: the ``pypaddle`` command, for environments without its script."""

from pypaddle.cli import main

if __name__ == "__main__":  # pragma: no cover - run as a program
    main()
