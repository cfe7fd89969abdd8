"""CLI commands. Each module: ``HELP``, ``add_arguments(parser)``, ``run(args) -> Report``."""
