"""Queries over batches that the admin pages show."""

import re

from django.db.models import QuerySet

from batches.models import Batch, RejectedLine

# A search of this shape may be a rejection code (batches' error codes are letters and '_').
_CODE_SHAPE = re.compile(r"[A-Za-z_]+")


def rejected_lines_search(*, batch: Batch, search: str) -> QuerySet[RejectedLine]:
    """The batch's rejected lines a search names, in line order.

    First a reference's line (through an index), else a code's lines (whatever
    the case typed), else the lines whose message contains the text; an empty
    search lists them all.
    """
    lines = batch.rejected_lines.order_by("line")
    if not search:
        return lines
    by_reference = lines.filter(reference=search)
    if by_reference.exists():
        return by_reference
    if _CODE_SHAPE.fullmatch(search):
        by_code = lines.filter(code=search.upper())
        if by_code.exists():
            return by_code
    return lines.filter(message__icontains=search)
