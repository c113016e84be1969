"""`python -m producers.cli …`: the `orderq` command without its console script
(how `orderq up` starts its worker, beat and Flower)."""

from producers.cli.main import main

main()
