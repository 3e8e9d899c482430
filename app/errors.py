"""The project's own exceptions: each message says what went wrong and what to do."""


class PolypviewError(Exception):
    """Base class: the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 2


class ConfigError(PolypviewError, ValueError):
    """A bad option or combination of options."""


class InputError(PolypviewError, OSError):
    """A video file that is missing, unreadable, empty or not a video."""

    exit_code = 3


class CaptureError(PolypviewError, OSError):
    """A capture device that is absent, busy or unplugged."""

    exit_code = 4


class ModelFileError(PolypviewError, ValueError):
    """A model file that is missing, corrupt, without metadata or of the wrong shape."""

    exit_code = 5


class OutputError(PolypviewError, OSError):
    """An output path that cannot be written (missing folder, no permission, disk full)."""

    exit_code = 6


class DataError(PolypviewError, OSError):
    """A training or evaluation dataset that is missing or malformed."""

    exit_code = 7


class DisplayError(PolypviewError, RuntimeError):
    """No display to open the window on, or no working Qt (use --headless)."""

    exit_code = 8
