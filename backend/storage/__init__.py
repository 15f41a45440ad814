"""Storage layer: plain SQLite, no Flask.

``database`` opens every file the same way; ``conversation`` is one pair's file;
``conversations`` maps pairs to files and keeps their connections open;
``accounts`` holds users, tokens, friendships, read markers and the change feed.
"""
