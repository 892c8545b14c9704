"""``python -m rollwise_server`` runs the ``rollwise`` command."""

from rollwise_server.cli import main

main()
