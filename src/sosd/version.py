"""The package version, in one file that imports nothing: modules below the top-level API (the Hub folder
writer, ONNX metadata, the CLI) read it here, so none of them imports ``sosd/__init__.py``, which imports
them back."""
__version__ = "0.1.0"
