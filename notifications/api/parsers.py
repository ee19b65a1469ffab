"""The JSON body of a /notif request, read strictly: what json.loads lets through, we don't."""

import json
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# A lone surrogate decodes from a JSON escape (\ud800) but is no character: it cannot be
# stored, encoded as UTF-8, or written in an answer.
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONPairs(list):
    """A JSON object as its (name, value) pairs in order, duplicates kept for the caller to see."""


class StrictJSONParser(JSONParser):
    """Refuses, as ParseError: text that is not UTF-8, NaN and Infinity, numbers past int()'s
    digit limit, nesting past the recursion limit, and lone surrogates. Objects become
    JSONPairs, so that a name given twice is not silently the last one."""

    def parse(self, stream, media_type=None, parser_context=None):
        # Django's request.body: its size was checked before it was read.
        raw = stream.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("JSON text must be UTF-8.") from None
        try:
            data = json.loads(text, object_pairs_hook=JSONPairs, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, JSONPairs) and _has_lone_surrogate(data):
            raise ParseError("JSON text holds a lone surrogate (\\ud800-\\udfff): not Unicode.")
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _has_lone_surrogate(pairs: JSONPairs) -> bool:
    # Only the top level's names and strings: any other value is refused anyway.
    return any(
        _SURROGATE.search(name) or (isinstance(value, str) and _SURROGATE.search(value))
        for name, value in pairs
    )
