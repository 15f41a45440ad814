"""Tests of the SSH and browser doors (docs/doors.md)."""
