"""The one place an adapter's parsing of a provider answer turns malformed data into BadResponseError.

An answer that decoded as JSON (or that an SDK returned) can still miss a required field, carry
the wrong type, or hold a value our model rejects. Adapters parse every listing page and every
detail answer inside `parsing(...)`, so such an answer is a `BadResponseError` naming the
provider, the queue, the operation and what was wrong, never a bare KeyError that would escape
the error tree (a listing either returns every job or raises a ProviderError).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pydantic

from providers.base import JobSource
from providers.errors import BadResponseError

# pydantic.ValidationError is a ValueError too; it is listed for the reader.
MALFORMED: tuple[type[Exception], ...] = (
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    AttributeError,
    pydantic.ValidationError,
)


def problem(err: Exception) -> str:
    """What was wrong, in words: a missing field by name, otherwise the error itself."""
    if isinstance(err, KeyError) and err.args:
        return f"missing field {err.args[0]!r}"
    return f"{type(err).__name__}: {err}"[:300]


@contextmanager
def parsing(source: JobSource, operation: str) -> Iterator[None]:
    """Run the block; a malformed-data error inside it becomes a BadResponseError."""
    try:
        yield
    except MALFORMED as err:
        raise BadResponseError(
            f"{source.provider} {source.config.name}: malformed {operation} answer: {problem(err)}"
        ) from err
