"""Searching a batch's rejected lines: by reference, else by code, else in the messages."""

import pytest

from batches.models import RejectedLine
from batches.selectors import rejected_lines_search
from tests.factories import BatchFactory

pytestmark = pytest.mark.django_db


def lines(batch, search: str) -> list[int]:
    return [rejected.line for rejected in rejected_lines_search(batch=batch, search=search)]


def reject(batch, line: int, *, reference: str, code: str, message: str) -> None:
    RejectedLine.objects.create(
        batch=batch, line=line, reference=reference, code=code, message=message
    )


def test_no_search_lists_every_rejected_line_in_line_order(batch_client):
    batch = BatchFactory(client=batch_client)
    for line in (9, 2, 5):
        reject(batch, line, reference=f"R-{line}", code="VALIDATION_ERROR", message="bad")

    assert lines(batch, "") == [2, 5, 9]


def test_a_reference_finds_its_line_alone(many_rejections):
    assert lines(many_rejections, "REF-12") == [12]


def test_a_code_finds_its_lines_whatever_the_case_typed(many_rejections):
    assert lines(many_rejections, "validation_error") == list(range(1, 121, 2))


def test_text_that_is_neither_reference_nor_code_is_looked_for_in_the_messages(many_rejections):
    assert lines(many_rejections, "BAD VALUE 10") == [10, *range(100, 110)]
    assert lines(many_rejections, "balance") == list(range(1, 121))


def test_a_reference_wins_over_a_code_and_a_message_of_the_same_text(batch_client):
    batch = BatchFactory(client=batch_client)
    reject(batch, 1, reference="DUPLICATE", code="VALIDATION_ERROR", message="x")
    reject(batch, 2, reference="R-2", code="DUPLICATE", message="DUPLICATE")

    assert lines(batch, "DUPLICATE") == [1]


def test_a_code_wins_over_a_message_that_mentions_it(batch_client):
    batch = BatchFactory(client=batch_client)
    reject(batch, 1, reference="R-1", code="VALIDATION_ERROR", message="the duplicate one")
    reject(batch, 2, reference="R-2", code="DUPLICATE", message="x")

    assert lines(batch, "duplicate") == [2]


def test_nothing_matching_finds_nothing(many_rejections):
    assert lines(many_rejections, "REF-999") == []


def test_another_batchs_lines_are_never_found(many_rejections):
    other = BatchFactory(client=many_rejections.client)
    reject(other, 1, reference="REF-12", code="VALIDATION_ERROR", message="balance: bad value 12")

    assert lines(many_rejections, "REF-12") == [12]
    assert lines(other, "") == [1]
