"""The exceptions the CLI turns into one line and an exit code; each carries its code.

    SearchError (2)         bad input: a study file, a config, a flag, a path, a storage URL
      StorageLost (1)       the storage went away or was deleted mid-study (not a usage error)
      DiskFull (1)          no space left where an output, a checkpoint or the storage is written
    KeyboardInterrupt (130) Ctrl-C
      Terminated (143)      SIGTERM (SIGHUP: 129), or the parent of a worker died: handled like Ctrl-C
"""

__all__ = ["INTERRUPT_EXIT", "DiskFull", "Notice", "SearchError", "StorageLost", "Terminated", "exit_code"]


class SearchError(Exception):
    """Bad input from the user. The message is complete on its own: what, where, and what to do."""

    exit_code = 2


class StorageLost(SearchError):
    """The storage went away mid-study (server stopped, network lost, file deleted)."""

    exit_code = 1


class DiskFull(SearchError):
    """No space left on the file system being written: the input was fine, the machine is full."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP: the terminal closed), handled like Ctrl-C: the running trial fails
    as interrupted, nothing else is lost. Exits 128 + the signal: 143, or 129 for SIGHUP."""

    exit_code = 143

    def __init__(self, signum: int = 15) -> None:
        super().__init__()
        self.exit_code = 128 + signum


class Notice(UserWarning):
    """Something the library mended or dropped on the way, that a person should hear of in
    one line (a journal's broken tail cut, a result dropped because another worker had
    finished its trial): issued with `warnings.warn`, printed by the CLI as 'warning: ...'."""


INTERRUPT_EXIT = 130


def exit_code(e: BaseException) -> int:
    """The process exit code for an exception that ends a command."""
    if isinstance(e, KeyboardInterrupt):
        return getattr(e, "exit_code", INTERRUPT_EXIT)
    return getattr(e, "exit_code", 2)
