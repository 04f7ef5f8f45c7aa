"""``python -m rollwise`` is the ``rollwise`` command."""

from rollwise.cli.main import run

run()
