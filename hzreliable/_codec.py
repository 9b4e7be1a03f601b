"""
Turning messages into stream fields and back.

A codec maps a message to a short tag and a payload. The tag is stored with
the entry, so a reader knows how to decode it whatever codec the publisher
preferred for other messages.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

__all__ = ["Codec", "JsonCodec", "PickleCodec"]


@runtime_checkable
class Codec(Protocol):
    """What a codec provides; pass one as ``ReliableTopicClient(codec=...)``."""

    def encode(self, message: Any) -> tuple[bytes, bytes]:
        """Return ``(tag, payload)``; raise ``TypeError`` or ``ValueError``
        for a message this codec cannot represent."""
        ...

    def decode(self, tag: bytes, payload: bytes) -> Any:
        """Return the message; raise ``ValueError`` for data it cannot read."""
        ...


_JSON = b"j"
_BYTES = b"b"
_PICKLE = b"p"
_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode
# json.loads would first sniff the encoding of bytes; ours are always UTF-8.
_loads = json.JSONDecoder().decode


class JsonCodec:
    """
    The default codec: JSON for str, int, float, bool, None, list and dict
    (a pydantic model is published as its JSON), bytes kept as raw bytes.

    NaN and infinity are refused, since JSON has no spelling for them.
    """

    def encode(self, message: Any) -> tuple[bytes, bytes]:
        if isinstance(message, (bytes, bytearray, memoryview)):
            return _BYTES, bytes(message)
        if isinstance(message, BaseModel):
            return _JSON, message.model_dump_json().encode()
        try:
            return _JSON, _dumps(message).encode()
        except ValueError as error:
            raise ValueError(f"message cannot be encoded as JSON: {error}") from None
        except TypeError as error:
            raise TypeError(f"message cannot be encoded as JSON: {error}") from None

    def decode(self, tag: bytes, payload: bytes) -> Any:
        if tag == _JSON:
            return _loads(payload.decode())
        if tag == _BYTES:
            return payload
        raise ValueError(f"unknown codec tag {tag!r}")


class PickleCodec(JsonCodec):
    """
    JsonCodec that also pickles what JSON cannot represent, and unpickles it.

    Unsafe with untrusted publishers: unpickling runs arbitrary code chosen
    by whoever wrote the entry. Use it only when every writer to the topic is
    trusted; it is never used unless passed explicitly.
    """

    def encode(self, message: Any) -> tuple[bytes, bytes]:
        try:
            return super().encode(message)
        except (TypeError, ValueError):
            return _PICKLE, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, tag: bytes, payload: bytes) -> Any:
        if tag == _PICKLE:
            return pickle.loads(payload)  # noqa: S301 - opt-in, documented unsafe
        return super().decode(tag, payload)
