"""Screens: sign in / register, the main chat screen, and its dialogs."""
