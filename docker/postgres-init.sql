-- Runs once, when the compose PostgreSQL initialises its data directory.
-- pg_stat_statements is preloaded by the service's command line; this makes it readable.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
