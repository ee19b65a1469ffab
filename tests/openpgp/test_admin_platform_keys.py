"""The admin's platform key pairs: operators generate, rotate and retire; nobody else can.

Every role is tried through the Django test client, by posting directly to the action URLs
(not only by looking for buttons), and client staff try another client's pages by URL.
"""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client as HttpClient
from django.urls import reverse

from batches.models import OpenPGPPlatformKey
from batches.openpgp_keys import (
    fingerprint_grouped,
    platform_key_current,
    platform_key_ensure,
    platform_key_rotate,
    platform_keys_active,
)


def keys_page(client) -> str:
    return reverse("admin:batches_openpgp_client", args=[client.pk])


def generate_url(client) -> str:
    return reverse("admin:batches_openpgp_generate", args=[client.pk])


def rotate_url(client) -> str:
    return reverse("admin:batches_openpgp_rotate", args=[client.pk])


def retire_url(key) -> str:
    return reverse("admin:batches_openpgpplatformkey_retire", args=[key.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_an_operator_generates_the_first_key_pair_from_the_clients_keys_page(
    operator_client, operator_user, client_8002
):
    page = operator_client.get(keys_page(client_8002)).content.decode()
    assert "No key pair yet" in page
    assert 'id="generate"' in page and 'id="rotate"' not in page

    response = operator_client.post(generate_url(client_8002), follow=True)

    key = platform_key_current(client_8002)
    assert key.created_by == operator_user
    text = response.content.decode()
    assert fingerprint_grouped(key.fingerprint) in text
    assert messages_of(response) == [f"Key pair generated: {fingerprint_grouped(key.fingerprint)}."]
    assert 'id="rotate"' in text and 'id="generate"' not in text


def test_generating_again_keeps_the_existing_key(operator_client, client_8002):
    key = platform_key_ensure(client_8002)
    operator_client.post(generate_url(client_8002))
    assert list(OpenPGPPlatformKey.objects.filter(client=client_8002)) == [key]


def test_the_rotation_page_says_the_client_must_download_and_the_old_key_keeps_decrypting(
    operator_client, client_8002
):
    old = platform_key_ensure(client_8002)
    page = operator_client.get(rotate_url(client_8002))
    text = page.content.decode()
    assert page.status_code == 200
    assert "The client must download the new public key" in text
    assert "keeps decrypting uploads until you retire it" in text
    assert fingerprint_grouped(old.fingerprint) in text
    assert 'name="csrfmiddlewaretoken"' in text
    assert list(platform_keys_active(client_8002)) == [old]  # a GET changes nothing


def test_an_operator_rotates_and_the_new_key_is_current_the_old_one_still_active(
    operator_client, operator_user, client_8002
):
    old = platform_key_ensure(client_8002)

    response = operator_client.post(rotate_url(client_8002), follow=True)

    new = platform_key_current(client_8002)
    assert new != old and new.created_by == operator_user
    assert list(platform_keys_active(client_8002)) == [new, old]
    assert "the client must download its public key" in messages_of(response)[0]
    text = response.content.decode()
    assert reverse("admin:batches_openpgpplatformkey_public", args=[new.pk]) in text
    assert "active: still decrypts" in text
    assert LogEntry.objects.get(object_id=str(new.pk)).user == operator_user


def test_an_operator_retires_an_older_key_after_confirming(
    operator_client, operator_user, client_8002
):
    old = platform_key_ensure(client_8002)
    new = platform_key_rotate(client_8002)
    hub = operator_client.get(keys_page(client_8002)).content.decode()
    assert retire_url(old) in hub and retire_url(new) not in hub
    confirmation = operator_client.get(retire_url(old)).content.decode()
    assert "no longer decrypt" in confirmation
    assert fingerprint_grouped(old.fingerprint) in confirmation
    old.refresh_from_db()
    assert old.retired_at is None  # not before the POST

    response = operator_client.post(retire_url(old), follow=True)

    old.refresh_from_db()
    assert old.retired_at is not None and old.retired_by == operator_user
    assert messages_of(response) == [f"Key {fingerprint_grouped(old.fingerprint)} retired."]
    assert f"by {operator_user.username}" in response.content.decode()


def test_retiring_the_current_or_only_key_by_post_is_refused_with_the_reason(
    operator_client, client_8002
):
    only = platform_key_ensure(client_8002)
    response = operator_client.post(retire_url(only), follow=True)
    assert messages_of(response) == [
        "Client 8002's only active key cannot be retired: uploads would have no key to decrypt "
        "with; rotate first."
    ]
    new = platform_key_rotate(client_8002)
    response = operator_client.post(retire_url(new), follow=True)
    assert messages_of(response)[0].startswith("The current key cannot be retired")
    assert set(platform_keys_active(client_8002)) == {only, new}


@pytest.mark.parametrize("role_client", ["support_client", "staff_client"])
def test_support_and_client_staff_get_403_posting_any_platform_key_action(
    request, role_client, client_8002
):
    http = request.getfixturevalue(role_client)
    old = platform_key_ensure(client_8002)
    platform_key_rotate(client_8002)
    before = list(OpenPGPPlatformKey.objects.values())

    answers = [
        http.post(generate_url(client_8002)).status_code,
        http.post(rotate_url(client_8002)).status_code,
        http.post(retire_url(old)).status_code,
        http.get(rotate_url(client_8002)).status_code,
        http.get(retire_url(old)).status_code,
    ]

    assert answers == [403] * 5
    assert list(OpenPGPPlatformKey.objects.values()) == before


@pytest.mark.parametrize("role_client", ["support_client", "staff_client"])
def test_support_and_client_staff_see_the_keys_page_without_actions(
    request, role_client, client_8002
):
    http = request.getfixturevalue(role_client)
    old = platform_key_ensure(client_8002)
    new = platform_key_rotate(client_8002)
    page = http.get(keys_page(client_8002))
    text = page.content.decode()
    assert page.status_code == 200
    assert fingerprint_grouped(new.fingerprint) in text
    assert fingerprint_grouped(old.fingerprint) in text
    assert 'id="rotate"' not in text and retire_url(old) not in text
    assert "PRIVATE KEY" not in text


def test_a_client_without_keys_shows_support_no_generate_button(support_client, client_8002):
    text = support_client.get(keys_page(client_8002)).content.decode()
    assert "No key pair yet" in text and 'id="generate"' not in text


def test_client_staff_cannot_open_another_clients_keys_by_url(staff_client, client_8003):
    key = platform_key_ensure(client_8003)
    assert staff_client.get(keys_page(client_8003)).status_code == 404
    assert staff_client.post(generate_url(client_8003)).status_code == 403
    assert staff_client.post(retire_url(key)).status_code == 403


def test_the_clients_index_lists_only_the_clients_the_user_sees(
    staff_client, client_8002, client_8003
):
    own = platform_key_ensure(client_8002)
    other = platform_key_ensure(client_8003)
    text = staff_client.get(reverse("admin:batches_openpgp_clients")).content.decode()
    assert keys_page(client_8002) in text and fingerprint_grouped(own.fingerprint) in text
    assert keys_page(client_8003) not in text and fingerprint_grouped(other.fingerprint) not in text


def test_an_operators_index_lists_every_client(operator_client, client_8002, client_8003):
    text = operator_client.get(reverse("admin:batches_openpgp_clients")).content.decode()
    assert keys_page(client_8002) in text and keys_page(client_8003) in text


def test_an_operator_cannot_post_an_action_without_the_csrf_token(operator_user, client_8002):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(operator_user)
    platform_key_ensure(client_8002)
    assert http.post(rotate_url(client_8002)).status_code == 403
    assert platform_keys_active(client_8002).count() == 1


def test_the_generate_url_takes_no_get(operator_client, client_8002):
    assert operator_client.get(generate_url(client_8002)).status_code == 405
    assert platform_key_current(client_8002) is None


def test_the_key_lists_show_fingerprints_grouped_and_link_each_clients_keys_page(
    operator_client, client_8002
):
    key = platform_key_ensure(client_8002)
    text = operator_client.get(
        reverse("admin:batches_openpgpplatformkey_changelist")
    ).content.decode()
    assert fingerprint_grouped(key.fingerprint) in text
    assert keys_page(client_8002) in text
    assert reverse("admin:batches_openpgp_clients") in text
