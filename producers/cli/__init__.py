"""The `orderq` command line."""
