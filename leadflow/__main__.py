"""``python -m leadflow`` runs the command line."""

from leadflow.cli import main

main()
