"""Texts given as bytes, as scikit-learn's vectorizers take them: the model's decode_error applies to bytes that are
not UTF-8.

The discriminative service reads every text field as bytes (strict refuses such a text naming it; replace and
ignore repair it as scikit-learn does), but protobuf's Python library refuses bytes that are not UTF-8 in a string
field. A request holding such a text is therefore sent as the message's own bytes followed by the text fields
written here: the same wire format (fields may come in any order; a repeated field's elements keep theirs). Bytes
that are UTF-8 are decoded and travel in the ordinary message.
"""

from __future__ import annotations

import struct
from typing import Any, List, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf.message import Message

from maas_client.errors import InvalidArgumentError

Text = Union[str, bytes]


def _decoded(raw: bytes) -> Text:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def str_bytes(value: str, what: str) -> bytes:
    """A str as UTF-8; lone surrogates U+DC80..U+DCFF (what errors="surrogateescape", os.fsdecode and sys.argv make
    of bytes that are not UTF-8) become those bytes again. Any other lone surrogate cannot be sent: a ValueError
    (InvalidArgumentError) naming `what`."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: lone surrogate U+{ord(value[e.start]):04X} at character {e.start} is not text and not a byte "
            "escaped by errors='surrogateescape'; pass the text as bytes or fix it") from None


def text_of(value: Any, what: str) -> Text:
    """A str as it is (one holding surrogate-escaped bytes, e.g. from sys.argv, as those bytes); bytes decoded when
    they are UTF-8, else kept; anything else is a TypeError."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return _decoded(str_bytes(value, what))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _decoded(bytes(value))
    raise TypeError(f"{what} must be a str or bytes, got {type(value).__name__}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _utf8(text: Text) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else text


def pack_texts(texts: Sequence[Text]) -> bytes:
    """The texts as ClassifyRequest / VectorizeRequest `packed_texts`: each text as its UTF-8 byte length, 4 bytes
    little-endian, then its bytes (KServe's raw BYTES tensor layout). One bytes field instead of one per text: cheaper
    to build, send and read for large batches. `bytes` texts are sent as they are (see decode_error), and so are the
    surrogate-escaped bytes of a str."""
    parts = []
    for i, text in enumerate(texts):
        data = str_bytes(text, f"texts[{i}]") if isinstance(text, str) else text
        if len(data) >= 1 << 32:
            raise ValueError(f"a text of {len(data)} bytes does not fit packed_texts' 4-byte length")
        parts.append(len(data).to_bytes(4, "little"))
        parts.append(data)
    return b"".join(parts)


class RawTexts:
    """A ClassifyRequest / VectorizeRequest whose `texts` (some not UTF-8) are written after the message's bytes."""

    def __init__(self, message: Message, texts: Sequence[Text]) -> None:
        self.number = message.DESCRIPTOR.fields_by_name["texts"].number
        self.message = message
        self.texts = [_utf8(t) for t in texts]

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf's name: the channel's serializer calls it)
        return self.message.SerializeToString() + b"".join(_field(self.number, t) for t in self.texts)


def texts_request(message: Message, texts: Sequence[Text]) -> Any:
    """`message` with its `texts`: the message itself when every text is a str, else a RawTexts."""
    if all(isinstance(t, str) for t in texts):
        message.texts.extend(texts)  # type: ignore[attr-defined]
        return message
    return RawTexts(message, texts)


Example = Tuple[Text, str, Optional[float]]


class RawBatch:
    """TrainRequest / EvaluateRequest { batch: TextBatch { examples: LabeledText... } } (`batch` is field 2 of
    both) with texts that are not UTF-8: LabeledText's text = 1, label = 2, weight = 3 (a double)."""

    def __init__(self, examples: List[Example]) -> None:
        self.examples = examples

    def SerializeToString(self) -> bytes:  # noqa: N802
        parts = []
        for text, label, weight in self.examples:
            example = _field(1, _utf8(text)) + _field(2, label.encode("utf-8"))
            if weight is not None:
                example += _varint(3 << 3 | 1) + struct.pack("<d", weight)
            parts.append(_field(1, example))
        return _field(2, b"".join(parts))


def serialize(request: Any) -> bytes:
    """The channel's request serializer: a protobuf message, a RawTexts or a RawBatch."""
    data: bytes = request.SerializeToString()
    return data
