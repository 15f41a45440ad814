"""The services: the use cases (chat, accounts, edits, search, presence, preferences, SSH
identity, placement, lifecycle) and their composition root (wiring.build_services). No
Flask.
"""
