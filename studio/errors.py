"""The one exception type for mistakes a person can fix.

A StudioError carries a message that names the problem and the fix. The UI shows it as a
gr.Error/gr.Warning and the CLI prints it without a traceback; anything else is a bug.
"""


class StudioError(Exception):
    """A user-facing problem: bad input, missing file, impossible setting."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [message])
