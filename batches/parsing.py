"""Streaming parser of decrypted batch files: one line, one customer, `key=value` tokens.

A line looks like `"clientId=8002", "appType=ABC", "customerName=John Doe"`:
comma-separated tokens, each quoted or not, split at the FIRST `=` into a key and
a value. `parse_lines` reads a binary stream line by line with a bounded
`readline` and yields one `ParsedLine` per non-blank line, so memory stays flat
whatever the file's size.

Decisions, each tested in tests/batches/test_parsing.py:

- Line numbers are physical: line N is what follows the (N-1)th LF byte, the number
  a client sees in an editor. A CR right before the LF belongs to the line break; a
  lone CR does not end a line. Blank and whitespace-only lines yield nothing but
  are counted.
- One physical line is one record: a quoted value cannot hold a line break. A quote
  left open at the end of a line rejects that line (MALFORMED_LINE) and never
  swallows the next one. This keeps line numbers trivial to count, so `start_after`
  skips lines by counting LF bytes without parsing them, and a client's error
  report points at the line they must fix.
- Quoting is CSV's: a quoted token may hold commas and `=`, and `""` inside it is one
  `"`. A quote may only open a token (after optional spaces) or close it; anything
  else around a quoted token is MALFORMED_LINE. Whitespace around commas is
  ignored.
- Keys are stripped of surrounding whitespace. A quoted token's value is kept
  exactly as written (`"name= Joe "` gives `" Joe "`, which validation may then
  reject); an unquoted token's value is stripped. An empty value is kept as "".
- Every token needs an `=` and a non-empty key; a key appears at most once per line.
  Empty tokens (`a=1,,b=2` or a trailing comma) are MALFORMED_TOKEN.
- A line that is not UTF-8 is INVALID_ENCODING; one longer than `max_line_bytes`
  (line break not counted) is LINE_TOO_LONG and is read past in bounded pieces.
  A UTF-8 byte order mark at the start of the file is ignored.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from itertools import chain
from typing import BinaryIO

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "ParsedLine",
    "RejectionCode",
    "parse_lines",
]


class RejectionCode(StrEnum):
    """Why a line was rejected; a str, so it compares equal to its name."""

    INVALID_ENCODING = "INVALID_ENCODING"
    MALFORMED_TOKEN = "MALFORMED_TOKEN"  # noqa: S105 (an error code, not a password)
    DUPLICATE_KEY = "DUPLICATE_KEY"
    MALFORMED_LINE = "MALFORMED_LINE"
    LINE_TOO_LONG = "LINE_TOO_LONG"


DEFAULT_MAX_LINE_BYTES = 64 * 1024
_EXCERPT_CHARS = 50
_SEPARATORS = ('", "', '","')


@dataclass(slots=True)
class ParsedLine:
    """One non-blank line: its tokens, or why it was rejected (then `tokens` is None)."""

    number: int
    tokens: dict[str, str] | None
    error_code: str = ""
    error_message: str = ""

    @property
    def rejected(self) -> bool:
        return self.tokens is None


class _Rejected(Exception):
    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def at(self, number: int) -> ParsedLine:
        return ParsedLine(number, None, self.code, self.message)


def parse_lines(
    stream: BinaryIO, *, start_after: int = 0, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[ParsedLine]:
    """Parse `stream` (binary, e.g. a file opened 'rb') lazily, one ParsedLine per line.

    `start_after` resumes after a checkpoint: lines numbered up to it are read past
    without being decoded or parsed, and the lines after it get the same numbers
    and results as in a full run. A line longer than `max_line_bytes` bytes (its
    line break not counted) is rejected. A rejected line never stops the rest of
    the file.
    """
    if start_after < 0:
        raise ValueError(f"start_after must be 0 or more, not {start_after}.")
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be 1 or more, not {max_line_bytes}.")
    if isinstance(stream, io.RawIOBase):
        # An unbuffered stream's readline reads one byte per call.
        stream = io.BufferedReader(stream)
    return _parse(stream, start_after, max_line_bytes)


def _parse(stream: BinaryIO, start_after: int, max_line_bytes: int) -> Iterator[ParsedLine]:
    # Room for the longest allowed line plus CRLF: no read holds more (but line 1's BOM).
    readline = partial(stream.readline, max_line_bytes + 2)
    number = _skip_lines(readline, start_after)
    pieces = iter(readline, b"")
    if start_after == 0:
        pieces = chain(_first_line(stream, max_line_bytes), pieces)
    for raw in pieces:
        number += 1
        if len(raw) > max_line_bytes and _content_length(raw) > max_line_bytes:
            length = _read_past_line(readline, raw)
            yield _too_long(length, max_line_bytes).at(number)
            continue
        try:
            line = raw.decode("utf-8").rstrip()
            if line:
                yield ParsedLine(number, _line_tokens(line))
        except UnicodeDecodeError as error:
            yield _invalid_encoding(raw, error).at(number)
        except _Rejected as rejection:
            yield rejection.at(number)


def _skip_lines(readline: Callable[[], bytes], count: int) -> int:
    """Read past `count` lines (fewer at the end of the stream); the number read past.

    Counts the pieces that end with LF, exactly as the main loop counts lines, so
    numbering after a resume matches a full run, overlong lines included.
    """
    skipped = 0
    while skipped < count:
        piece = readline()
        if not piece:
            break
        if piece.endswith(b"\n"):
            skipped += 1
    return skipped


def _first_line(stream: BinaryIO, max_line_bytes: int) -> list[bytes]:
    """The file's first line (or its first piece) without a byte order mark.

    Read with room for the mark, so that the piece left has the same bound as all
    the others and a line cut short by the bound is always seen as too long.
    """
    piece = stream.readline(max_line_bytes + 2 + len(codecs.BOM_UTF8))
    if piece.startswith(codecs.BOM_UTF8):
        piece = piece[len(codecs.BOM_UTF8) :]
    return [piece] if piece else []


def _content_length(raw: bytes) -> int:
    """Length of a line without its LF or CRLF (a piece without LF is all content)."""
    if raw.endswith(b"\r\n"):
        return len(raw) - 2
    if raw.endswith(b"\n"):
        return len(raw) - 1
    return len(raw)


def _read_past_line(readline: Callable[[], bytes], piece: bytes) -> int:
    """Read the rest of an overlong line in bounded pieces; the line's content length."""
    length, ending = len(piece), piece[-2:]
    while not piece.endswith(b"\n"):
        piece = readline()
        if not piece:
            break
        length += len(piece)
        ending = (ending + piece)[-2:]
    if ending == b"\r\n":
        return length - 2
    return length - 1 if ending.endswith(b"\n") else length


def _too_long(length: int, max_line_bytes: int) -> _Rejected:
    return _Rejected(
        RejectionCode.LINE_TOO_LONG,
        f"The line is {length:,} bytes long; at most {max_line_bytes:,} are allowed.",
    )


def _invalid_encoding(raw: bytes, error: UnicodeDecodeError) -> _Rejected:
    column = len(raw[: error.start].decode("utf-8")) + 1
    return _Rejected(
        RejectionCode.INVALID_ENCODING,
        f"Not valid UTF-8: byte 0x{raw[error.start]:02x} at column {column} "
        f"(byte {error.start + 1} of the line). Save the file as UTF-8.",
    )


def _line_tokens(line: str) -> dict[str, str]:
    """The tokens of a non-blank line; raises _Rejected.

    Fast path for the pre-agreed `"k=v", "k=v"` form: when splitting the inside on
    the separator accounts for every quote of the line, no token holds a quote, so
    the split is exactly what `_walk` would return.
    """
    if line[0] == '"' == line[-1]:
        inside, quotes = line[1:-1], line.count('"')
        for separator in _SEPARATORS:
            texts = inside.split(separator)
            if quotes == 2 * len(texts):
                return _tokens(texts)
    if '"' not in line:
        return _tokens(line.split(","), strip_values=True)
    return _tokens(_walk(line))


def _walk(line: str) -> list[str]:
    """General tokenizer: the parts between quotes alternate outside, inside, outside...

    An empty outside part between two inside parts is a doubled quote (`""`).
    """
    parts = line.split('"')
    last = len(parts) - 1
    if last % 2:
        raise _Rejected(
            RejectionCode.MALFORMED_LINE,
            'Unbalanced quotes: the line has an odd number of " characters (a quoted token '
            'is not closed on this line, or a " inside a value is not doubled).',
        )
    texts: list[str] = []
    index = 0
    while True:
        # Most outside parts are a bare separator, or nothing at the line's ends.
        if parts[index].strip() != ("," if 0 < index < last else ""):
            texts.extend(_outside_tokens(parts, index, last))
        if index == last:
            return texts
        quoted, index = parts[index + 1], index + 2
        while index < last and not parts[index]:
            quoted, index = f'{quoted}"{parts[index + 1]}', index + 2
        texts.append(quoted)


def _outside_tokens(parts: list[str], index: int, last: int) -> list[str]:
    """The unquoted tokens of the outside part `index`, after checking its edges."""
    segment = parts[index]
    pieces = segment.split(",")
    after_quote, before_quote = index > 0, index < last
    if after_quote and pieces[0].strip():
        _reject_text(parts, index, 0, "Unexpected text after the closing quote of a token")
    if before_quote and pieces[-1].strip():
        _reject_text(
            parts,
            index,
            len(segment) - len(pieces[-1]),
            'Unexpected text before an opening quote (a " inside an unquoted token?)',
        )
    if after_quote and before_quote and len(pieces) == 1:
        column = _column(parts, index)
        raise _Rejected(
            RejectionCode.MALFORMED_LINE,
            f"Missing comma between two quoted tokens at column {column}.",
        )
    end = len(pieces) - 1 if before_quote else len(pieces)
    return [_bare(piece) for piece in pieces[int(after_quote) : end]]


def _reject_text(parts: list[str], index: int, offset: int, reason: str) -> None:
    """Reject the line for the text that starts `offset` characters into part `index`."""
    text = parts[index][offset:].split(",")[0]
    column = _column(parts, index) + offset + len(text) - len(text.lstrip())
    raise _Rejected(
        RejectionCode.MALFORMED_LINE, f"{reason}: {_excerpt(text.strip())} at column {column}."
    )


def _column(parts: list[str], index: int) -> int:
    """1-based column of the first character of part `index` (a quote ends each part)."""
    return sum(len(part) for part in parts[:index]) + index + 1


def _bare(text: str) -> str:
    """An unquoted token with its value stripped, for a line that has quoted ones too."""
    key, equals, value = text.partition("=")
    return f"{key}={value.strip()}" if equals else text.strip()


def _tokens(texts: list[str], *, strip_values: bool = False) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for text in texts:
        key, equals, value = text.partition("=")
        key = key.strip()
        if not (equals and key) or key in tokens:
            raise _token_rejection(text, key, bool(equals))
        tokens[key] = value.strip() if strip_values else value
    return tokens


def _token_rejection(text: str, key: str, has_equals: bool) -> _Rejected:
    if has_equals and key:
        return _Rejected(
            RejectionCode.DUPLICATE_KEY, f"Key {_excerpt(key)} appears more than once."
        )
    if has_equals:
        message = f"Token {_excerpt(text)} has an empty key."
    elif text.strip():
        message = f"Token {_excerpt(text)} has no '=': write it as key=value."
    else:
        message = "Empty token (two commas in a row, or a comma at the end): write key=value."
    return _Rejected(RejectionCode.MALFORMED_TOKEN, message)


def _excerpt(text: str) -> str:
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 3] + "..."
    return repr(text)
