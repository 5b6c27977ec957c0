"""Errors the CLI turns into one clear line (never a traceback) for the user."""


class SaferVLMError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class ConfigError(SaferVLMError):
    """A config file is missing, unreadable, or does not match its schema."""


class DataError(SaferVLMError):
    """A dataset record or file is unusable; the message names file, record and field."""
