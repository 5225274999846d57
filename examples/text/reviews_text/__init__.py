"""A user's text models for Perennial (see ../README.md)."""
