"""User-facing error types shared by every stage of the pipeline (the base layer).

Each is a :class:`UserError`: the ``mos-nas`` CLI prints its one-line message and exits with
code 2 instead of a traceback. Library callers catch the specific subclass.
"""


class UserError(Exception):
    """A problem with what the user gave us (a file, an option, an architecture)."""


class SpaceError(UserError, ValueError):
    """A search space file is malformed."""


class ArchError(UserError, ValueError):
    """An architecture is malformed or lies outside its search space."""


class DataError(UserError, ValueError):
    """Input data (corpus, dictionary, binarized directory) is missing or malformed."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, corrupt, or of the wrong kind."""
