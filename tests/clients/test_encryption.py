import pytest
from cryptography.fernet import Fernet, InvalidToken

from clients.encryption import decrypt_text, encrypt_text


def test_a_token_round_trips_and_hides_the_plaintext():
    token = encrypt_text("kokatto-secret")

    assert "kokatto-secret" not in token
    assert decrypt_text(token) == "kokatto-secret"


def test_rotation_keeps_old_tokens_readable(settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    token = encrypt_text("before rotation")

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]

    assert decrypt_text(token) == "before rotation"
    new_token = encrypt_text("after rotation")
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    assert decrypt_text(new_token) == "after rotation"
    with pytest.raises(InvalidToken):
        decrypt_text(token)
