"""Variant `depth_only`: the shared model tests of tests/models/base.py.

Run: .venv/bin/python -m pytest tests/models/test_variant_depth_only.py -q
"""
from tests.models.base import ModelTester


class TestVariant(ModelTester):
    variant = "depth_only"
