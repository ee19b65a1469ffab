import stat

from kokatto_site.local_secrets import django_secret_key, field_encryption_keys


def test_a_missing_key_is_generated_once_and_kept_private(tmp_path):
    path = tmp_path / "field_encryption.key"

    first = field_encryption_keys("", path)
    second = field_encryption_keys("", path)

    assert first == second
    assert len(first) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_configured_key_wins_over_the_file(tmp_path):
    assert django_secret_key("from-the-environment", tmp_path / "secret_key") == (
        "from-the-environment"
    )
    assert not (tmp_path / "secret_key").exists()


def test_several_configured_keys_are_split_on_commas(tmp_path):
    assert field_encryption_keys("k1, k2", tmp_path / "unused") == ["k1", "k2"]
