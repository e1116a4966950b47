"""Reading the registry document from SSM at run time, cached (Powertools parameters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SSMProvider

from configpipe.registry import Registry
from configpipe.settings import REGISTRY_MAX_AGE_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


class RegistrySource:
    """Callable returning the current registry; parses only when the cached text changes."""

    def __init__(
        self, parameter: str, client: SSMClient | None = None, max_age: int = REGISTRY_MAX_AGE_SECONDS
    ):
        self._parameter = parameter
        self._provider = SSMProvider(boto3_client=client) if client else SSMProvider()
        self._max_age = max_age
        self._text: str | None = None
        self._registry: Registry | None = None

    def __call__(self) -> Registry:
        text = self._provider.get(self._parameter, max_age=self._max_age)
        if text != self._text or self._registry is None:
            self._registry = Registry.model_validate_json(str(text))
            self._text = str(text)
        return self._registry
