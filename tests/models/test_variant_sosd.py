"""Variant `sosd`: the shared model tests of tests/models/base.py.

Run: .venv/bin/python -m pytest tests/models/test_variant_sosd.py -q
"""
from tests.models.base import ModelTester


class TestVariant(ModelTester):
    variant = "sosd"
