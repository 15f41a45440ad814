"""The bottom layer: values and rules every other layer uses — domain errors, usernames,
settings, the clock, SSH key parsing, the optional-extras table. Imports nothing else of
the backend.
"""
