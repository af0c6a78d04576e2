"""Pruning methods as registered scorers: `base` defines the interface, `registry` finds them by name.

One file per method (`ukmp.py`, `flap.py`, ...) wraps the method's arithmetic in `ukmp.scoring`.
"""
