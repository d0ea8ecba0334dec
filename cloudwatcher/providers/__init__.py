"""Storage backends behind one :class:`~cloudwatcher.providers.base.Provider` protocol."""

from cloudwatcher.providers.base import (
    BlockingUploads,
    DailyCapError,
    FileChangedError,
    PermanentError,
    Provider,
    ProviderError,
    QuotaExceededError,
    RemoteFile,
    SaveState,
    TransientError,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.registry import build_provider

__all__ = [
    "BlockingUploads",
    "DailyCapError",
    "FileChangedError",
    "PermanentError",
    "Provider",
    "ProviderError",
    "QuotaExceededError",
    "RemoteFile",
    "SaveState",
    "TransientError",
    "UploadJob",
    "UploadResult",
    "build_provider",
]
