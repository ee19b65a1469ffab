"""{{ key.fingerprint|grouped }}: OpenPGP fingerprints as people read them, "ABCD 1234 …"."""

from django import template

from batches.openpgp_keys import fingerprint_grouped

register = template.Library()


@register.filter
def grouped(fingerprint: str) -> str:
    return fingerprint_grouped(fingerprint or "")
