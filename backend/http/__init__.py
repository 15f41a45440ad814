"""HTTP layer: request parsing, auth decisions, blueprints and JSON errors."""
