"""Conformance checks every model must pass, and synthetic data with known answers."""

from chuchun.testing.conformance import CHECKS, check_model
from chuchun.testing.synthetic import block_interactions

__all__ = ["CHECKS", "block_interactions", "check_model"]
