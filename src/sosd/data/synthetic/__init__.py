"""Procedural scenes (being split into a package by stage; see layout.py)."""
from sosd.data.synthetic.layout import *  # noqa: F401,F403
from sosd.data.synthetic.layout import __all__  # noqa: F401
