"""``python -m legion_nb`` is the ``legion`` command."""

from legion_nb.cli.main import main

if __name__ == "__main__":
    main()
