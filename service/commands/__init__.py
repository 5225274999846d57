"""Subcommands of the ``perennial`` CLI, one module each (see ``service/cli.py``).

Modules here import their heavy dependencies inside ``func`` so ``perennial --help`` stays fast.
"""
