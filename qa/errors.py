"""Errors that are the user's to fix.

Anything raised as a ``QAError`` is shown as one line, without a traceback, by
every face (CLI, Slack, HTTP); its message must say what went wrong and how to
put it right. Anything else is a bug and keeps its traceback.
"""


class QAError(Exception):
    """A problem with the user's input, files or settings."""


class CorpusError(QAError):
    """The corpus folder is missing, empty or holds a file that cannot be read."""


class BadIndexError(QAError):
    """The index is missing, corrupted, or was built with other settings."""


class ModelError(QAError):
    """The embedding model cannot be loaded."""


class QuestionError(QAError):
    """The question is empty or too long."""


class SourceError(QAError):
    """A cited file or line that the index does not hold (``qa show``)."""


class SettingsError(QAError):
    """A setting, config file or environment variable has a bad value."""


class LLMError(QAError):
    """The LLM server failed, timed out or sent something that is not a chat completion.

    Answers never fail on it: the bot falls back to its extractive answer and
    shows this message as a one-line warning.
    """
