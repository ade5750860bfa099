"""EVR Desktop: the officer's side of Enhanced Video Response."""

__version__ = "0.1.0"
