"""pairchat backend: the Flask API over per-pair SQLite files.

Layers, each importing only those below it (``lint-imports`` checks it):
``cli`` > ``app`` > ``http`` (blueprints, auth decisions, request parsing, reply
shapes, the error table) > ``services`` (the composition root,
``build_services``) > ``chat``/``accounts``/``notify``/``login_throttle`` (the
services, no Flask) > ``storage`` (plain SQLite) > ``usernames``/``settings``/
``errors``. docs/architecture.md walks through them; docs/design.md is the
contract they keep. Import what you need from its module: importing this
package loads nothing else, so ``backend.storage`` stays free of Flask.
"""
