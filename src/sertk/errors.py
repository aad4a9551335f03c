"""The one exception hierarchy of sertk.

Every message says what was wrong and what to do about it. The CLI prints
``SertkError`` messages without a traceback and exits with status 2.
"""


class SertkError(Exception):
    """Base class of every error sertk raises on purpose."""


class AudioError(SertkError):
    """Audio could not be read or is unusable (missing, empty, corrupt, NaN, absurd rate)."""


class CorpusError(SertkError):
    """A corpus directory or manifest is missing, malformed or inconsistent."""


class FoldError(SertkError):
    """A split is impossible or would leak speakers between train and test."""


class FeatureError(SertkError):
    """A feature extractor is misconfigured or cannot run on the given input."""


class ConfigError(SertkError):
    """A configuration file or ``--set`` override is invalid."""


class BundleError(SertkError):
    """A model bundle is missing, corrupt or incompatible with this version."""


class ClusterError(SertkError):
    """A compute cluster (Ray) is not installed, unreachable or failed a distributed job."""
