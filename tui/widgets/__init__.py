"""Widgets of the main screen: friend list, chat log, status bar."""
