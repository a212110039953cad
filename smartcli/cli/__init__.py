"""The command line: parses arguments, calls the front door (``smartcli.Index``), presents the result.

Modules here import only ``smartcli`` (the package's front door) and each other
(tests/unit/test_architecture.py checks it).
"""

from smartcli.cli.app import app, main

__all__ = ["app", "main"]
