"""Subcommands of ``refbp`` that belong to the oracle (registered in :mod:`refbp.cli`)."""
