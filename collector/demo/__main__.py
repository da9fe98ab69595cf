"""``python -m collector.demo`` (what ``scripts/demo`` runs): the demo command."""

from collector.demo.run import main

main()
