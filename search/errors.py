"""The one exception type the CLI turns into a single line and exit code 2."""


class SearchError(Exception):
    """Bad input from the user: a study file, a config, a flag, a path, a storage URL.

    The message is complete on its own: what, where, and what to do.
    """


class StorageLost(SearchError):
    """The storage went away mid-study (server stopped, network lost). Not a usage error."""

    exit_code = 1
