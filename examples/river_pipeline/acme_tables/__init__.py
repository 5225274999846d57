"""A user's own River pipeline for Perennial: a loans table (see ../README.md)."""
