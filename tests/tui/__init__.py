"""Tests of the terminal client (tui/): Pilot, snapshots, tmux, against real servers."""
