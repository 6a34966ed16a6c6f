"""The one error family whose messages are written for the user."""


class RetuneError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits non-zero."""


class ConfigError(RetuneError):
    """The configuration file or a value in it is wrong."""


class SourceError(RetuneError):
    """A configured data source cannot be read."""


class ContractError(RetuneError):
    """A data contract failed; the message names the failing expectations."""


class StoreError(RetuneError):
    """The store refused an operation (unknown ref, conflicting merge, ...)."""


class TrainingError(RetuneError):
    """The fine-tune could not run or failed."""


class ExportError(RetuneError):
    """The model could not be exported or failed its parity gate."""


class ServeError(RetuneError):
    """The model server cannot start or answer (no production model, unknown canary, port taken, ...)."""
