"""Shared test helpers: database set-up, identifiers, real worker processes."""
