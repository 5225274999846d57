"""A user's own network for Perennial: a small CNN on 8×8 digits (see ../README.md)."""
