"""pairchat backend: the Flask API over per-pair SQLite files."""
