"""Limits: per-user and per-address rates, the password-check gate, the login throttle and
the free-disk floor. No Flask.
"""
