"""``python -m pulso`` is the ``pulso`` command."""

from pulso.cli import main

main()
