"""One error type whose message is the one line a user sees."""


class BenchError(Exception):
    """A user-facing failure: the message names the file, the field and what was expected.

    Scripts print ``str(error)`` as a single line and exit non-zero, so messages must not
    contain newlines or secrets.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
