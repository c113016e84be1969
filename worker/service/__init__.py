"""Command handlers, the unit of work and the idempotency ledger flow."""
