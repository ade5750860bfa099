"""The one refusal the rules give, in words."""

from __future__ import annotations


class Refused(ValueError):
    """An action the rules refuse; ``reasons`` says why in words."""

    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


class NotEligible(Refused):
    """Refused because the victim fails the EVR criteria: the way out is an
    in-person visit, which the screen offers."""
