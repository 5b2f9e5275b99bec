"""Variant `semantic_only`: the shared model tests of tests/models/base.py.

Run: .venv/bin/python -m pytest tests/models/test_variant_semantic_only.py -q
"""
from tests.models.base import ModelTester


class TestVariant(ModelTester):
    variant = "semantic_only"
