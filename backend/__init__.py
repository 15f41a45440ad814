"""pairchat backend: the Flask API over per-pair SQLite files.

Layers: ``storage`` (plain SQLite, no Flask), ``accounts``/``chat``/``notify``
(services), ``http`` (blueprints, auth decisions, request parsing) and ``app``
(the factory). ``cli`` is the ``pairchat-server`` command.
"""

from backend.app import create_app

__all__ = ["create_app"]
