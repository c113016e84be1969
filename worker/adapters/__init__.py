"""Everything that touches PostgreSQL: tables, mapping, repositories, error translation."""
