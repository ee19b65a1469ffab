"""batches/parsing.py: streaming parse of decrypted batch lines into key=value tokens."""

import io
import random
import tracemalloc

import pytest

from batches import parsing
from batches.parsing import ParsedLine, RejectionCode, parse_lines

SPEC_LINE = (
    b'"clientId=8002", "appType=ABC", "clientNotifRefId=UNIQ-REFERENCE-ID", '
    b'"customerName=John Doe", "balance=1230000", "dueDate=09-09-2015"'
)
SPEC_TOKENS = {
    "clientId": "8002",
    "appType": "ABC",
    "clientNotifRefId": "UNIQ-REFERENCE-ID",
    "customerName": "John Doe",
    "balance": "1230000",
    "dueDate": "09-09-2015",
}


def parse(data: bytes, **options) -> list[ParsedLine]:
    return list(parse_lines(io.BytesIO(data), **options))


def tokens_of(line: bytes) -> dict[str, str] | None:
    [parsed] = parse(line)
    return parsed.tokens


def rejection_of(line: bytes) -> tuple[str, str]:
    [parsed] = parse(line)
    assert parsed.rejected
    return parsed.error_code, parsed.error_message


class LineSource(io.RawIOBase):
    """An unbuffered stream of `count` generated lines, made as they are read."""

    def __init__(self, count: int) -> None:
        self.lines = (b'"clientNotifRefId=REF-%09d", "balance=%d"\n' % (n, n) for n in range(count))
        self.pending = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self.pending) < len(buffer):
            line = next(self.lines, None)
            if line is None:
                break
            self.pending += line
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        self.bytes_read += size
        return size


class PieceSpy(io.BytesIO):
    """A BytesIO that remembers the longest piece any read returned."""

    longest = 0

    def readline(self, size=-1):
        piece = super().readline(size)
        self.longest = max(self.longest, len(piece))
        return piece


# The accepted forms


def test_the_integration_documents_example_line_gives_its_six_tokens():
    assert parse(SPEC_LINE + b"\n") == [ParsedLine(1, SPEC_TOKENS)]


def test_unquoted_tokens_without_spaces_are_parsed():
    assert tokens_of(b"clientId=8002,appType=ABC,balance=1230000") == {
        "clientId": "8002",
        "appType": "ABC",
        "balance": "1230000",
    }


def test_quoted_and_unquoted_tokens_mix_with_any_spaces_after_commas():
    assert tokens_of(b'"a=1",  b=2, "c=3",d=4 ,\t"e=5"') == {
        "a": "1",
        "b": "2",
        "c": "3",
        "d": "4",
        "e": "5",
    }


def test_comma_without_space_between_quoted_tokens_is_accepted():
    assert tokens_of(b'"a=1","b=2"') == {"a": "1", "b": "2"}


def test_spaces_around_the_comma_on_both_sides_of_quotes_are_accepted():
    assert tokens_of(b'  "a=1" , "b=2"   ') == {"a": "1", "b": "2"}


def test_equals_and_comma_inside_quoted_value_split_at_first_equals():
    assert tokens_of(b'"note=a=b, c", "x=1"') == {"note": "a=b, c", "x": "1"}


def test_equals_inside_unquoted_value_split_at_first_equals():
    assert tokens_of(b"expr=a=b") == {"expr": "a=b"}


def test_doubled_quotes_inside_quoted_token_become_one_quote():
    assert tokens_of(b'"name=Joe ""JJ"" Doe", "x=1"') == {"name": 'Joe "JJ" Doe', "x": "1"}


def test_doubled_quotes_may_surround_a_comma_and_space_inside_a_value():
    assert tokens_of(b'"quote=say "", "" twice", "x=1"') == {"quote": 'say ", " twice', "x": "1"}


def test_keys_are_stripped_and_quoted_values_are_kept_exactly():
    assert tokens_of(b'" customerName =  John Doe ", "\tnote=\t"') == {
        "customerName": "  John Doe ",
        "note": "\t",
    }


def test_unquoted_keys_and_values_are_stripped():
    assert tokens_of(b"  customerName =  John Doe  ,balance= 12 ") == {
        "customerName": "John Doe",
        "balance": "12",
    }


def test_empty_values_are_kept_as_empty_strings():
    assert tokens_of(b'"a=", b=') == {"a": "", "b": ""}


def test_non_ascii_utf8_text_is_decoded():
    assert tokens_of('"customerName=Budi Śantoso", kota=Yogyākarta'.encode()) == {
        "customerName": "Budi Śantoso",
        "kota": "Yogyākarta",
    }


@pytest.mark.parametrize(
    "line",
    [
        SPEC_LINE.decode(),
        '"a=1","b=2"',
        '"a=x"", ""y", "b=2"',
        '"a=1", b=2, "c=3"',
        "a=1, b=2",
    ],
)
def test_leading_spaces_before_the_first_token_change_nothing(line):
    assert tokens_of(f"   {line}".encode()) == tokens_of(line.encode())


def random_token(chooser: random.Random, key: str, value: str) -> str:
    """`key=value` written quoted, or unquoted with spaces around when its value allows."""
    if '"' in value or "," in value or value != value.strip() or chooser.random() < 0.5:
        return '"{}={}"'.format(key, value.replace('"', '""'))
    spaces = [chooser.choice(["", " ", "  ", "\t"]) for _ in range(4)]
    return f"{spaces[0]}{key}{spaces[1]}={spaces[2]}{value}{spaces[3]}"


def test_randomly_written_lines_give_back_the_tokens_they_were_written_from():
    chooser = random.Random(20251125)
    alphabet = 'ab =,"\t.é'
    for _ in range(1000):
        expected = {
            f"k{index}": "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 8)))
            for index in range(chooser.randint(1, 6))
        }
        written = [random_token(chooser, key, value) for key, value in expected.items()]
        line = written[0] + "".join(
            chooser.choice([", ", ",", " , ", ",  "]) + token for token in written[1:]
        )
        assert tokens_of(line.encode()) == expected, line


# Lines and their numbers


def test_utf8_bom_at_start_of_file_is_ignored():
    assert parse(b"\xef\xbb\xbf" + SPEC_LINE + b"\n") == [ParsedLine(1, SPEC_TOKENS)]


def test_crlf_and_lf_line_ends_and_a_last_line_without_newline_are_read_alike():
    lines = parse(b'"a=1"\r\n"a=2"\n"a=3", "b=x"\r\n"a=4"')
    assert [(line.number, line.tokens) for line in lines] == [
        (1, {"a": "1"}),
        (2, {"a": "2"}),
        (3, {"a": "3", "b": "x"}),
        (4, {"a": "4"}),
    ]


def test_blank_and_whitespace_only_lines_are_skipped_but_counted():
    data = b'\n"a=1"\r\n\r\n   \n\t \r\n"a=2"\n\n'
    assert [(line.number, line.tokens) for line in parse(data)] == [
        (2, {"a": "1"}),
        (6, {"a": "2"}),
    ]


def test_a_lone_carriage_return_does_not_end_a_line():
    [line] = parse(b'"a=1\rstill a=1", "b=2"\n')
    assert line.number == 1
    assert line.tokens == {"a": "1\rstill a=1", "b": "2"}


def test_an_empty_stream_yields_nothing():
    assert parse(b"") == []
    assert parse(b"\xef\xbb\xbf") == []


# Rejections, each of one line only


def test_line_with_invalid_utf8_is_rejected_and_the_next_line_still_parses():
    lines = parse(b'"name=caf\xc3\xa9 \xff", "b=2"\n"a=1"\n')
    assert lines[0].number == 1
    assert lines[0].error_code == RejectionCode.INVALID_ENCODING
    assert "byte 0xff at column 12 (byte 13 of the line)" in lines[0].error_message
    assert lines[1] == ParsedLine(2, {"a": "1"})


def test_token_without_equals_is_rejected_quoting_the_token():
    code, message = rejection_of(b'"a=1", "just text", "b=2"')
    assert code == RejectionCode.MALFORMED_TOKEN
    assert "'just text'" in message
    assert "'='" in message


def test_long_token_is_truncated_to_fifty_characters_in_the_message():
    code, message = rejection_of(b'"a=1", "' + b"x" * 500 + b'"')
    assert code == RejectionCode.MALFORMED_TOKEN
    assert "'" + "x" * 47 + "...'" in message
    assert len(message) < 120


def test_empty_key_is_rejected():
    assert rejection_of(b'"a=1", " =2"')[0] == RejectionCode.MALFORMED_TOKEN
    assert "empty key" in rejection_of(b"=2")[1]


@pytest.mark.parametrize("line", [b"a=1,,b=2", b'"a=1",', b'"a=1", ""', b"a=1, ,b=2"])
def test_empty_token_is_rejected(line):
    code, message = rejection_of(line)
    assert code == RejectionCode.MALFORMED_TOKEN
    assert message.startswith("Empty token")


def test_repeated_key_is_rejected_naming_the_key():
    code, message = rejection_of(b'"balance=1", "dueDate=x", " balance =2"')
    assert code == RejectionCode.DUPLICATE_KEY
    assert "'balance'" in message


def test_unbalanced_quote_is_rejected_without_swallowing_the_next_line():
    lines = parse(b'"a=1", "b=2\n"c=3"\n')
    assert lines[0].number == 1
    assert lines[0].error_code == RejectionCode.MALFORMED_LINE
    assert "Unbalanced quotes" in lines[0].error_message
    assert lines[1] == ParsedLine(2, {"c": "3"})


def test_quote_left_open_by_an_undoubled_quote_inside_a_value_is_rejected():
    assert rejection_of(b'"name=Joe "JJ Doe"')[0] == RejectionCode.MALFORMED_LINE


def test_garbage_after_a_closing_quote_is_rejected_with_its_column():
    code, message = rejection_of(b'"a=1"x, "b=2"')
    assert code == RejectionCode.MALFORMED_LINE
    assert message == "Unexpected text after the closing quote of a token: 'x' at column 6."


def test_quote_inside_an_unquoted_token_is_rejected_with_its_column():
    code, message = rejection_of(b'"a=1", name=Joe "JJ" Doe')
    assert code == RejectionCode.MALFORMED_LINE
    assert "before an opening quote" in message
    assert message.endswith(": 'name=Joe' at column 8.")


def test_missing_comma_between_quoted_tokens_is_rejected():
    code, message = rejection_of(b'"a=1" "b=2"')
    assert code == RejectionCode.MALFORMED_LINE
    assert message == "Missing comma between two quoted tokens at column 6."


def test_a_rejected_line_reports_its_own_number_among_good_lines():
    data = b'"a=1"\n\n"a=2", "a=3"\n"a=4"\n'
    assert [(line.number, line.error_code) for line in parse(data)] == [
        (1, ""),
        (3, RejectionCode.DUPLICATE_KEY),
        (4, ""),
    ]


# Line length


def test_line_longer_than_the_limit_is_rejected_and_the_next_line_parses():
    data = b'"a=1"\n"note=' + b"x" * 100 + b'"\n"a=3"\n'
    lines = parse(data, max_line_bytes=50)
    assert lines[0] == ParsedLine(1, {"a": "1"})
    assert lines[1].number == 2
    assert lines[1].error_code == RejectionCode.LINE_TOO_LONG
    assert lines[1].error_message == "The line is 107 bytes long; at most 50 are allowed."
    assert lines[2] == ParsedLine(3, {"a": "3"})


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_line_of_exactly_the_limit_is_accepted_whatever_its_line_break(ending):
    line = b'"note=' + b"x" * 43 + b'"'
    assert len(line) == 50
    assert parse(line + ending, max_line_bytes=50) == [ParsedLine(1, {"note": "x" * 43})]
    assert parse(line + b"x" + ending, max_line_bytes=50)[0].error_code == "LINE_TOO_LONG"


def test_overlong_line_is_read_in_pieces_no_longer_than_the_limit():
    stream = PieceSpy(b'"a=1"\n' + b"y" * 1_000_000 + b'\r\n"a=2"')
    lines = list(parse_lines(stream, max_line_bytes=1000))
    assert [(line.number, line.error_code) for line in lines] == [
        (1, ""),
        (2, RejectionCode.LINE_TOO_LONG),
        (3, ""),
    ]
    assert "1,000,000 bytes" in lines[1].error_message
    assert stream.longest <= 1002


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_byte_order_mark_does_not_count_towards_the_first_lines_length(ending):
    line = b'"note=' + b"x" * 43 + b'"'
    data = b"\xef\xbb\xbf" + line + ending
    assert parse(data, max_line_bytes=50) == [ParsedLine(1, {"note": "x" * 43})]


def test_overlong_first_line_after_a_byte_order_mark_is_one_rejected_line():
    data = b"\xef\xbb\xbf" + SPEC_LINE + b'\n"a=2"\n'
    lines = parse(data, max_line_bytes=50)
    assert [(line.number, line.error_code) for line in lines] == [
        (1, RejectionCode.LINE_TOO_LONG),
        (2, ""),
    ]


def test_invalid_arguments_are_refused_when_called_not_when_iterated():
    with pytest.raises(ValueError, match="start_after"):
        parse_lines(io.BytesIO(b""), start_after=-1)
    with pytest.raises(ValueError, match="max_line_bytes"):
        parse_lines(io.BytesIO(b""), max_line_bytes=0)


# Resuming after a checkpoint

MIXED_FILE = (
    b"\xef\xbb\xbf"
    + SPEC_LINE
    + b"\r\n"
    + b"\n"
    + b'"a=1", "b=\xff"\n'
    + b"   \r\n"
    + b'"long='
    + b"z" * 200
    + b'"\n'
    + b'"a=1", "b=2\n'
    + b'"a=1"\r\n'
    + b'"a=1", "a=2"\n'
    + b'"n='
    + b"w" * 300
    + b"\n\n"
    + b'b=3, "c=4"'
)


def test_start_after_gives_the_same_lines_as_a_full_run_from_every_checkpoint():
    full = parse(MIXED_FILE, max_line_bytes=150)
    assert [line.number for line in full] == [1, 3, 5, 6, 7, 8, 9, 11]
    for checkpoint in range(13):
        resumed = parse(MIXED_FILE, start_after=checkpoint, max_line_bytes=150)
        assert resumed == [line for line in full if line.number > checkpoint], checkpoint


def test_start_after_does_not_parse_the_skipped_lines(monkeypatch):
    parsed = []
    original = parsing._line_tokens

    def spy(line):
        parsed.append(line)
        return original(line)

    monkeypatch.setattr(parsing, "_line_tokens", spy)
    data = b"".join(b'"n=%d"\n' % n for n in range(1, 101))
    lines = parse(data, start_after=97)
    assert [line.tokens for line in lines] == [{"n": "98"}, {"n": "99"}, {"n": "100"}]
    assert parsed == ['"n=98"', '"n=99"', '"n=100"']


def test_start_after_past_the_end_yields_nothing():
    assert parse(b'"a=1"\n"a=2"\n', start_after=5) == []


# Streaming


def test_parsing_reads_the_stream_only_as_far_as_the_lines_taken():
    source = LineSource(1_000_000)
    lines = parse_lines(source)
    assert next(lines) == ParsedLine(1, {"clientNotifRefId": "REF-000000000", "balance": "0"})
    assert source.bytes_read <= 256 * 1024  # of about 46 MB


def test_memory_stays_flat_while_a_large_stream_is_parsed():
    tracemalloc.start()
    try:
        count = 0
        for line in parse_lines(LineSource(10_000)):
            count += not line.rejected
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 128 * 1024  # the stream is about 460 KB
