"""The client's public key set in the admin: upload (pasted or a file), check, confirm.

Operators and the client's own staff set it; support only reads. The confirmation carries the
checked key in a token signed for this client and this user (django.core.signing), and the key
is checked again on confirm. A refusal is the form again (200, as the admin's own forms), with
its one-line reason and nothing stored. Each refusal is tried with a key gpg made, and client
staff try to reach another client's key by URL, by an extra form field and by a token from
another page.
"""

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.timezone import localtime

from batches import openpgp_admin
from batches.models import OpenPGPClientKey
from batches.openpgp_keys import fingerprint_grouped

BANK = "Bank Demo Ops <ops@bank.example>"


def upload_url(client) -> str:
    return reverse("admin:batches_openpgp_client_key_upload", args=[client.pk])


def confirm_url(client) -> str:
    return reverse("admin:batches_openpgp_client_key_confirm", args=[client.pk])


def check(http, client, text="", file=None, extra=None):
    data = {"key_text": text, **(extra or {})}
    if file is not None:
        data["key_file"] = file
    return http.post(upload_url(client), data)


def page_text(response) -> str:
    return response.content.decode()


@pytest.fixture
def bank_key(client_gpg):
    """The bank's RSA-3072 key pair in the client's gpg; returns its fingerprint."""
    return client_gpg.new_key(BANK, "rsa3072", "sign")


def test_an_operator_pastes_a_key_sees_its_details_then_confirms_it(
    operator_client, operator_user, client_8002, client_gpg, bank_key
):
    checked = check(operator_client, client_8002, client_gpg.export(BANK))

    text = page_text(checked)
    assert checked.status_code == 200
    assert fingerprint_grouped(bank_key) in text
    assert "RSA 3072" in text
    assert "Bank Demo Ops &lt;ops@bank.example&gt;" in text
    assert localtime(checked.context["key"]["created"]).strftime("%Y-%m-%d %H:%M") in text
    assert not OpenPGPClientKey.objects.exists()  # nothing stored before the confirmation

    done = operator_client.post(
        confirm_url(client_8002), {"token": checked.context["token"]}, follow=True
    )

    key = OpenPGPClientKey.objects.get(client=client_8002)
    assert (key.fingerprint, key.uploaded_by) == (bank_key, operator_user)
    assert done.redirect_chain[-1][0] == reverse(
        "admin:batches_openpgp_client", args=[client_8002.pk]
    )
    assert fingerprint_grouped(bank_key) in page_text(done)
    assert LogEntry.objects.get(object_id=str(key.pk)).user == operator_user


@pytest.mark.parametrize(("armour", "name"), [(True, "bank.asc"), (False, "bank.gpg")])
def test_client_staff_set_their_clients_key_from_an_armoured_or_binary_file(
    staff_client, staff_8002, client_8002, client_gpg, bank_key, armour, name
):
    exported = client_gpg.run(*(["--armor"] if armour else []), "--export", BANK).stdout
    checked = check(staff_client, client_8002, file=SimpleUploadedFile(name, exported))
    assert fingerprint_grouped(bank_key) in page_text(checked)

    staff_client.post(confirm_url(client_8002), {"token": checked.context["token"]})

    key = OpenPGPClientKey.objects.get(client=client_8002)
    assert (key.fingerprint, key.uploaded_by) == (bank_key, staff_8002)
    assert key.public_key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    imported = client_gpg.run("--import", input=key.public_key.encode())  # gpg reads it back
    assert imported.returncode == 0


def _secret(gpg):
    gpg.new_key(BANK, "future-default")
    return gpg.export(BANK, secret=True)


def _two_keys(gpg):
    gpg.new_key("one <one@bank.example>", "future-default")
    gpg.new_key("two <two@bank.example>", "future-default")
    return gpg.run("--armor", "--export").stdout.decode()


def _rsa_1024(gpg):
    gpg.new_key(BANK, "rsa1024", "sign")
    return gpg.export(BANK)


def _sign_only(gpg):
    gpg.new_key(BANK, "ed25519", "sign")
    return gpg.export(BANK)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_secret, "This is a secret key: send only the public key."),
        (_two_keys, "The file holds 2 keys: send exactly one."),
        (_rsa_1024, "RSA keys need at least 2048 bits; this has 1024."),
        (_sign_only, "The key cannot encrypt (no valid encryption subkey)."),
        (lambda gpg: "hello, this is not a key", "No OpenPGP public key found in the file."),
    ],
    ids=["secret-key", "two-keys", "rsa-1024", "no-encryption-subkey", "not-a-key"],
)
def test_a_bad_key_is_refused_with_its_one_line_reason_and_nothing_stored(
    operator_client, client_8002, client_gpg, make, reason
):
    refused = check(operator_client, client_8002, make(client_gpg))
    assert refused.status_code == 200
    assert refused.context["form"].non_field_errors() == [reason]
    assert "token" not in refused.context
    assert not OpenPGPClientKey.objects.exists()


def test_a_key_file_past_the_size_limit_is_refused(
    staff_client, client_8002, client_gpg, bank_key, settings
):
    settings.OPENPGP_MAX_KEY_BYTES = 1000
    exported = client_gpg.run("--export", BANK).stdout
    assert len(exported) > 1000
    refused = check(staff_client, client_8002, file=SimpleUploadedFile("bank.gpg", exported))
    assert refused.context["form"].non_field_errors() == [
        "The key file is larger than 1000 bytes: send only the public key."
    ]


def test_binary_garbage_is_not_a_key(staff_client, client_8002):
    refused = check(staff_client, client_8002, file=SimpleUploadedFile("x.gpg", b"\x01\x02\x03"))
    assert refused.context["form"].non_field_errors() == [
        "No OpenPGP public key found in the file."
    ]


def test_an_empty_post_asks_for_a_key(operator_client, client_8002):
    refused = operator_client.post(upload_url(client_8002))
    assert refused.status_code == 200
    assert refused.context["form"].non_field_errors() == [
        "Paste the key or choose a key file (one of them)."
    ]


@pytest.mark.parametrize("both", [False, True])
def test_one_key_is_given_pasted_or_as_a_file_not_both_nor_none(
    operator_client, client_8002, client_gpg, bank_key, both
):
    text = client_gpg.export(BANK)
    file = SimpleUploadedFile("bank.asc", text.encode()) if both else None
    refused = check(operator_client, client_8002, text if both else "", file=file)
    assert refused.context["form"].non_field_errors() == [
        "Paste the key or choose a key file (one of them)."
    ]


def test_support_cannot_set_a_clients_key(
    client, operator_user, support_user, client_8002, client_gpg, bank_key
):
    client.force_login(operator_user)
    token = check(client, client_8002, client_gpg.export(BANK)).context["token"]
    client.force_login(support_user)
    assert client.get(upload_url(client_8002)).status_code == 403
    assert check(client, client_8002, client_gpg.export(BANK)).status_code == 403
    assert client.post(confirm_url(client_8002), {"token": token}).status_code == 403
    assert not OpenPGPClientKey.objects.exists()


def test_client_staff_cannot_reach_another_clients_key_pages_by_url(
    staff_client, client_8003, client_gpg, bank_key
):
    assert staff_client.get(upload_url(client_8003)).status_code == 404
    assert check(staff_client, client_8003, client_gpg.export(BANK)).status_code == 404
    assert staff_client.post(confirm_url(client_8003), {"token": "x"}).status_code == 404
    assert not OpenPGPClientKey.objects.exists()


def test_a_client_field_added_to_the_forms_is_ignored(
    staff_client, client_8002, client_8003, client_gpg, bank_key
):
    checked = check(
        staff_client, client_8002, client_gpg.export(BANK), extra={"client": client_8003.pk}
    )
    staff_client.post(
        confirm_url(client_8002), {"token": checked.context["token"], "client": client_8003.pk}
    )
    assert [key.client for key in OpenPGPClientKey.objects.all()] == [client_8002]


def test_an_altered_confirmation_token_is_refused(staff_client, client_8002, client_gpg, bank_key):
    token = check(staff_client, client_8002, client_gpg.export(BANK)).context["token"]
    altered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    refused = staff_client.post(confirm_url(client_8002), {"token": altered})
    assert refused.status_code == 200
    assert "The confirmation was altered: upload the key again." in page_text(refused)
    assert not OpenPGPClientKey.objects.exists()


def test_a_token_issued_for_another_client_or_user_is_refused(
    client, operator_user, staff_8002, client_8002, client_8003, client_gpg, bank_key
):
    client.force_login(operator_user)
    for_8003 = check(client, client_8003, client_gpg.export(BANK)).context["token"]
    operators_for_8002 = check(client, client_8002, client_gpg.export(BANK)).context["token"]
    client.force_login(staff_8002)
    for token in (for_8003, operators_for_8002):
        refused = client.post(confirm_url(client_8002), {"token": token})
        assert refused.status_code == 200
        assert "The confirmation was issued for another upload" in page_text(refused)
    assert not OpenPGPClientKey.objects.exists()


def test_an_expired_confirmation_is_refused(
    staff_client, client_8002, client_gpg, bank_key, monkeypatch
):
    token = check(staff_client, client_8002, client_gpg.export(BANK)).context["token"]
    monkeypatch.setattr(openpgp_admin, "UPLOAD_TOKEN_MAX_AGE", -1)
    refused = staff_client.post(confirm_url(client_8002), {"token": token})
    assert "The confirmation expired: upload the key again." in page_text(refused)
    assert not OpenPGPClientKey.objects.exists()


def test_the_key_is_checked_again_on_confirmation(
    staff_client, client_8002, client_gpg, bank_key, settings
):
    token = check(staff_client, client_8002, client_gpg.export(BANK)).context["token"]
    settings.OPENPGP_MIN_RSA_BITS = 4096  # the rules changed between the two steps
    refused = staff_client.post(confirm_url(client_8002), {"token": token})
    assert refused.status_code == 200
    assert "RSA keys need at least 4096 bits; this has 3072." in page_text(refused)
    assert not OpenPGPClientKey.objects.exists()


@pytest.mark.parametrize(
    ("role_client", "offered"),
    [("operator_client", True), ("staff_client", True), ("support_client", False)],
)
def test_the_keys_page_offers_setting_the_client_key_to_whoever_may(
    request, client_8002, role_client, offered
):
    http = request.getfixturevalue(role_client)
    text = page_text(http.get(reverse("admin:batches_openpgp_client", args=[client_8002.pk])))
    assert (upload_url(client_8002) in text) is offered
