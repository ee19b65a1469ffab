"""The ways a client may encrypt its batch files are those batches/decryption.py registers.

clients stands below batches, so batches hands its method names to clients when
Django starts (batches/apps.py); a method registered later is offered too, with
no migration.
"""

import pytest
from django.core.exceptions import ValidationError

from batches import decryption
from batches.decryption import Decryption, register
from tests.factories import ClientFactory


def test_every_registered_decryption_method_is_a_client_choice(db):
    client = ClientFactory.build()
    offered = [value for value, _ in client._meta.get_field("batch_encryption").choices]
    assert offered == list(decryption.METHODS)
    assert {"7z", "none"} <= set(offered)


def test_a_method_registered_later_can_be_chosen_for_a_client(db, monkeypatch):
    monkeypatch.setattr(decryption, "METHODS", dict(decryption.METHODS))

    @register
    class Rot13(Decryption):
        name = "rot13"
        result_suffix = ".rot13"
        open_plaintext = wrap_result = None

    client = ClientFactory(batch_encryption="rot13")
    client.full_clean()


def test_an_unregistered_method_is_refused_for_a_client(db):
    client = ClientFactory(batch_encryption="pgp")
    with pytest.raises(ValidationError) as caught:
        client.full_clean()
    assert "batch_encryption" in caught.value.message_dict
