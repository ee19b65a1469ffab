"""The recipient kept after the purge: a keyed hash, so "was this number notified?" still
has an answer, while the number itself is gone.

Keyed (HMAC-SHA256 with RECIPIENT_HASH_KEY, a secret outside the database), not a bare
salted hash: Indonesian mobile numbers are a space of about ten billion, which anyone
holding a database copy could hash through in minutes, salt or not, since a salt has to
be stored beside the hashes for them to be found again. Without the key, a copy of the
database gives no way back to a number. The same normalisation as intake (E.164 for a
phone number, lower case for an email address) makes every writing of one number hash
the same.
"""

import hashlib
import hmac

from django.conf import settings
from django.db.models import QuerySet

from clients.parameter_validation import phone_number_e164
from notifications.models import Delivery

# RECIPIENT_HASH_KEY when the environment does not set it: this, then SECRET_KEY (settings).
DERIVED_KEY_PREFIX = "kokatto-recipient-digest:"


def normalised_recipient(recipient: str) -> str:
    """An email address in lower case; a phone number in E.164 as intake stores it."""
    text = recipient.strip()
    if "@" in text:
        return text.lower()
    return phone_number_e164(text) or text


def recipient_digest(recipient: str) -> str:
    """The keyed hash (hex HMAC-SHA256) of the normalised recipient."""
    return hmac.new(
        settings.RECIPIENT_HASH_KEY.encode(),
        normalised_recipient(recipient).encode(),
        hashlib.sha256,
    ).hexdigest()


def purged_deliveries_to(recipient: str) -> QuerySet[Delivery]:
    """Purged deliveries whose recipient was `recipient` (any writing of it), by its index.

    Deliveries not purged yet still hold their recipient and are found by it instead.
    """
    return Delivery.objects.filter(recipient_digest=recipient_digest(recipient))
