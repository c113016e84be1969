"""`python -m orderq.cli …`: the `orderq` command without its console script
(how `orderq up` starts its worker, beat and Flower)."""

from orderq.cli.main import main

main()
