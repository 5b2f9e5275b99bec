"""The one error type users see: a message naming the file or key and the problem."""


class SOSDError(Exception):
    """Bad input (file, dataset, checkpoint, config): the CLI prints the message, not a traceback."""


class DataError(SOSDError):
    """A dataset file that is missing, unreadable or malformed; the message names the path."""
