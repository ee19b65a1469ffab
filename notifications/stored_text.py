"""Text from outside the platform (a provider's answer, a client's file) as a database
column can hold it."""


def storable_text(text: str) -> str:
    """`text` with what PostgreSQL's text (NUL) or UTF-8 (a lone surrogate) cannot hold
    written out as an escape (a NUL as \\x00, a surrogate as \\ud800), the rest as it is."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
