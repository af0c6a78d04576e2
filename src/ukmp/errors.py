"""The one exception type meant for people.

Anything a user can cause (a bad ratio, a missing path, an unsupported architecture) raises
`UserError` with one sentence that names the problem and the fix; the CLI prints it and exits 2
without a traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input, reported as one clear sentence."""
