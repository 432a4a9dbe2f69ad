"""Subcommands of ``webmap`` beyond the core ones, one module each with ``register(cli)``."""
