"""Client staff of 8002 see and change only 8002's data in the control panel.

Every page is asked for data of client 8003 in every way a user could try:
lists, URLs, form posts, autocomplete, list filters, inline choices.
"""

import pytest

from clients.models import Application, ApplicationMedium, Client
from templates_app.models import ContentTemplate
from tests.admin.conftest import (
    MARKERS_8003,
    assert_no_8003_data,
    form_data,
    html,
    message_texts,
)
from tests.factories import UserFactory, issue_key

# (admin URL of the model, attribute of TenantRows holding its row)
SCOPED_MODELS = [
    pytest.param("clients/application", "application", id="applications"),
    pytest.param("templates_app/contenttemplate", "template", id="templates"),
    pytest.param("notifications/notification", "notification", id="notifications"),
    pytest.param("notifications/delivery", "delivery", id="deliveries"),
    pytest.param("batches/batch", "batch", id="batches"),
    pytest.param("clients/client", "client", id="clients"),
]

# The application form's fields that have defaults, as a browser would send them.
NEW_APPLICATION_DEFAULTS = {"sms_segment_limit": "3", "sample_values": "{}"}

ADD_FORM_MANAGEMENT = {
    "fields-TOTAL_FORMS": "0",
    "fields-INITIAL_FORMS": "0",
    "fields-MIN_NUM_FORMS": "0",
    "fields-MAX_NUM_FORMS": "1000",
    "media-TOTAL_FORMS": "0",
    "media-INITIAL_FORMS": "0",
    "media-MIN_NUM_FORMS": "0",
    "media-MAX_NUM_FORMS": "1000",
}


def missing_pk(model) -> int:
    return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


# 1. Changelists


@pytest.mark.parametrize(("model_url", "attr"), SCOPED_MODELS)
def test_client_staff_changelist_shows_only_its_own_clients_rows(
    staff_client, tenant_data, model_url, attr
):
    response = staff_client.get(f"/admin/{model_url}/")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [getattr(tenant_data.own, attr)]
    assert_no_8003_data(html(response))


# 2. Opening another client's object by URL


@pytest.mark.parametrize(("model_url", "attr"), SCOPED_MODELS)
@pytest.mark.parametrize("view", ["change", "history"])
def test_client_staff_opens_its_own_clients_objects(
    staff_client, tenant_data, model_url, attr, view
):
    own = getattr(tenant_data.own, attr)

    assert staff_client.get(f"/admin/{model_url}/{own.pk}/{view}/").status_code == 200


@pytest.mark.parametrize(("model_url", "attr"), SCOPED_MODELS)
@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_client_staff_cannot_open_another_clients_object_by_url(
    staff_client, tenant_data, model_url, attr, view
):
    other = getattr(tenant_data.other, attr)

    response = staff_client.get(f"/admin/{model_url}/{other.pk}/{view}/", follow=True)

    if response.redirect_chain:
        assert response.redirect_chain == [("/admin/", 302)]
    else:
        assert response.status_code in (403, 404)
    assert_no_8003_data(html(response))


@pytest.mark.parametrize(("model_url", "attr"), SCOPED_MODELS)
@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_client_staff_cannot_tell_another_clients_object_from_a_missing_one(
    staff_client, tenant_data, model_url, attr, view
):
    other = getattr(tenant_data.other, attr)
    absent_pk = missing_pk(type(other))

    def answer(pk):
        response = staff_client.get(f"/admin/{model_url}/{pk}/{view}/", follow=True)
        messages = [text.replace(f"“{pk}”", "“ID”") for text in message_texts(response)]
        body = "" if response.redirect_chain else html(response)
        return response.redirect_chain, response.status_code, messages, body

    assert answer(other.pk) == answer(absent_pk)


# 3. Posting a change to another client's object


def test_client_staff_cannot_change_another_clients_application_by_post(staff_client, tenant_data):
    own, other = tenant_data.own.application, tenant_data.other.application
    data = form_data(staff_client.get(f"/admin/clients/application/{own.pk}/change/"))
    data.update({"name": "Changed by 8002", "brand_name": "HACKED"})

    response = staff_client.post(f"/admin/clients/application/{other.pk}/change/", data)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    other.refresh_from_db()
    own.refresh_from_db()
    assert (other.name, other.brand_name) == ("Payment reminder", "Bank Demo")
    assert own.brand_name == "Bank Demo"
    assert not Application.objects.filter(brand_name="HACKED").exists()


def test_client_staff_cannot_change_another_clients_template_by_post(staff_client, tenant_data):
    own, other = tenant_data.own.template, tenant_data.other.template
    data = form_data(staff_client.get(f"/admin/templates_app/contenttemplate/{own.pk}/change/"))
    data["body"] = "Changed by 8002"

    response = staff_client.post(f"/admin/templates_app/contenttemplate/{other.pk}/change/", data)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    other.refresh_from_db()
    assert other.body == MARKERS_8003["template_body"]
    assert not ContentTemplate.objects.filter(body="Changed by 8002").exists()


def test_client_staff_cannot_delete_another_clients_template_by_post(staff_client, tenant_data):
    other = tenant_data.other.template

    response = staff_client.post(
        f"/admin/templates_app/contenttemplate/{other.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code in (302, 403, 404)
    assert ContentTemplate.objects.filter(pk=other.pk).exists()


def test_client_staff_cannot_bulk_delete_another_clients_template(staff_client, tenant_data):
    other = tenant_data.other.template

    staff_client.post(
        "/admin/templates_app/contenttemplate/",
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )

    assert ContentTemplate.objects.filter(pk=other.pk).exists()


def test_client_staff_cannot_move_its_application_to_another_client(staff_client, tenant_data):
    own = tenant_data.own.application
    data = form_data(staff_client.get(f"/admin/clients/application/{own.pk}/change/"))
    data["client"] = str(tenant_data.other.client.pk)

    response = staff_client.post(f"/admin/clients/application/{own.pk}/change/", data)

    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["client"])
    own.refresh_from_db()
    assert own.client == tenant_data.own.client


def test_client_staff_cannot_move_its_template_to_another_clients_application(
    staff_client, tenant_data
):
    own = tenant_data.own.template
    data = form_data(staff_client.get(f"/admin/templates_app/contenttemplate/{own.pk}/change/"))
    data["application"] = str(tenant_data.other.application.pk)

    response = staff_client.post(f"/admin/templates_app/contenttemplate/{own.pk}/change/", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Select a valid choice" in str(errors["application"])
    own.refresh_from_db()
    assert own.application == tenant_data.own.application


@pytest.mark.parametrize("delete", [False, True], ids=["edit", "delete"])
@pytest.mark.parametrize("inline", ["fields", "media"])
def test_client_staff_cannot_reach_another_applications_rows_through_its_own_inlines(
    staff_client, tenant_data, inline, delete
):
    own, other = tenant_data.own.application, tenant_data.other.application
    other_rows = getattr(other, inline)
    before = list(other_rows.values())
    own_before = list(getattr(own, inline).values())
    data = form_data(staff_client.get(f"/admin/clients/application/{own.pk}/change/"))
    data[f"{inline}-0-id"] = str(other_rows.first().pk)
    if inline == "fields":
        data[f"{inline}-0-name"] = "stolenField"
    if delete:
        data[f"{inline}-0-DELETE"] = "on"

    staff_client.post(f"/admin/clients/application/{own.pk}/change/", data)

    assert list(other_rows.values()) == before
    assert list(getattr(own, inline).values()) == own_before


# 4. Creating objects for another client


def test_client_staff_cannot_create_an_application_for_another_client(
    staff_client, client_8002, client_8003
):
    data = {
        "client": str(client_8003.pk),
        "code": "NEWAPP",
        "name": "x",
        "is_active": "on",
        **NEW_APPLICATION_DEFAULTS,
    }

    response = staff_client.post("/admin/clients/application/add/", {**data, **ADD_FORM_MANAGEMENT})

    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["client"])
    assert not Application.objects.filter(code="NEWAPP").exists()


def test_client_staff_creates_an_application_for_its_own_client(staff_client, client_8002):
    data = {
        "client": str(client_8002.pk),
        "code": "NEWAPP",
        "name": "x",
        "is_active": "on",
        **NEW_APPLICATION_DEFAULTS,
    }

    response = staff_client.post("/admin/clients/application/add/", {**data, **ADD_FORM_MANAGEMENT})

    assert response.status_code == 302
    assert Application.objects.get(code="NEWAPP").client == client_8002


def test_client_staff_add_application_form_preselects_and_offers_only_its_client(
    staff_client, client_8002, client_8003
):
    response = staff_client.get("/admin/clients/application/add/")

    form = response.context["adminform"].form
    assert form.initial["client"] == client_8002.pk
    assert list(form.fields["client"].queryset) == [client_8002]
    assert f'<option value="{client_8002.pk}" selected>' in html(response)
    assert_no_8003_data(html(response))


def test_client_staff_cannot_create_a_template_for_another_clients_application(
    staff_client, app_8002, app_8003
):
    data = {"application": str(app_8003.pk), "medium": "sms", "body": "Hello [customerName]"}

    response = staff_client.post("/admin/templates_app/contenttemplate/add/", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Select a valid choice" in str(errors["application"])
    assert not ContentTemplate.objects.exists()


def test_client_staff_creates_a_template_for_its_own_application(staff_client, app_8002):
    data = {
        "application": str(app_8002.pk),
        "medium": "sms",
        "body": "Hello [customerName]",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }

    response = staff_client.post("/admin/templates_app/contenttemplate/add/", data)

    assert response.status_code == 302
    assert ContentTemplate.objects.get().application == app_8002


@pytest.mark.parametrize(
    ("url", "parameter", "attr"),
    [
        ("/admin/clients/application/add/", "client", "client"),
        ("/admin/templates_app/contenttemplate/add/", "application", "application"),
    ],
)
def test_client_staff_add_form_prefilled_with_another_clients_object_shows_nothing_of_it(
    staff_client, tenant_data, url, parameter, attr
):
    response = staff_client.get(url, {parameter: getattr(tenant_data.other, attr).pk})

    assert response.status_code == 200
    assert_no_8003_data(html(response))


# 5. Autocomplete


@pytest.mark.parametrize("term", ["", "XYZ", "8003", "Payment"])
def test_client_staff_template_application_autocomplete_offers_only_own_applications(
    staff_client, app_8002, app_8003, term
):
    response = staff_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "templates_app",
            "model_name": "contenttemplate",
            "field_name": "application",
            "term": term,
        },
    )

    assert response.status_code == 200
    ids = {result["id"] for result in response.json()["results"]}
    assert str(app_8003.pk) not in ids
    if term in ("", "Payment"):
        assert ids == {str(app_8002.pk)}
    assert "XYZ" not in response.content.decode()


# Django's autocomplete view answers for any foreign key of any model, not only
# for the declared autocomplete_fields: each must still be scoped.
@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name", "attr"),
    [
        ("notifications", "notification", "client", "client"),
        ("notifications", "notification", "application", "application"),
        ("notifications", "notification", "batch", "batch"),
        ("notifications", "delivery", "notification", "notification"),
        ("notifications", "deliveryevent", "delivery", "delivery"),
        ("clients", "secretkey", "client", "client"),
        ("batches", "batch", "client", "client"),
    ],
)
def test_client_staff_autocomplete_of_any_foreign_key_offers_only_own_rows(
    staff_client, tenant_data, app_label, model_name, field_name, attr
):
    response = staff_client.get(
        "/admin/autocomplete/",
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": ""},
    )

    assert response.status_code == 200
    ids = {result["id"] for result in response.json()["results"]}
    assert ids == {str(getattr(tenant_data.own, attr).pk)}
    assert_no_8003_data(response.content.decode())


# 6. List filters


@pytest.mark.parametrize(
    ("model_url", "attr", "parameter", "value_attr"),
    [
        ("notifications/notification", "notification", "client", "client"),
        ("notifications/notification", "notification", "application", "application"),
        ("notifications/delivery", "delivery", "client", "client"),
        ("templates_app/contenttemplate", "template", "client", "client"),
        ("clients/application", "application", "client", "client"),
        ("batches/batch", "batch", "client", "client"),
    ],
)
def test_client_staff_filtering_by_another_client_shows_no_rows(
    staff_client, tenant_data, model_url, attr, parameter, value_attr
):
    value = getattr(tenant_data.other, value_attr).pk

    response = staff_client.get(f"/admin/{model_url}/", {parameter: value})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert_no_8003_data(html(response))


def test_client_staff_notification_filters_list_only_its_own_client_and_applications(
    staff_client, tenant_data
):
    response = staff_client.get("/admin/notifications/notification/")

    choices = {
        spec.title: [choice["display"] for choice in spec.choices(response.context["cl"])]
        for spec in response.context["cl"].filter_specs
    }
    assert choices["client"] == ["All", "8002 · PT Bank Demo Nusantara"]
    assert choices["application"] == ["All", "8002/ABC"]
    assert_no_8003_data(html(response))


@pytest.mark.parametrize(
    "query",
    [
        "client__id__exact={other_client}",
        "client__exact={other_client}",
        "client_id={other_client}",
        "client__client_id=8003",
        "client__name__startswith=PT",
        "application__code=XYZ",
        "application__client__client_id=8003",
        "reference__startswith=REF-PEMBIAYAAN",
        "client__isnull=False",
    ],
)
def test_client_staff_undeclared_notification_lookups_do_not_leak(staff_client, tenant_data, query):
    query = query.format(other_client=tenant_data.other.client.pk)

    response = staff_client.get(f"/admin/notifications/notification/?{query}")

    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")
    else:
        assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert tenant_data.other.notification not in response.context["cl"].result_list
    assert_no_8003_data(html(response))


@pytest.mark.parametrize(
    ("model_url", "parameter"),
    [
        ("notifications/notification", "client"),
        ("notifications/notification", "application"),
        ("notifications/delivery", "client"),
        ("batches/batch", "client"),
        ("templates_app/contenttemplate", "application"),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "-1",
        "1.5",
        # Larger than any 64-bit integer: SQLite cannot even bind it.
        pytest.param("99999999999999999999999", id="overflowing-number"),
        # Passes str.isdigit() but not int().
        pytest.param("²", id="superscript-two"),
    ],
)
def test_client_staff_malformed_filter_value_shows_no_rows_and_does_not_crash(
    staff_client, tenant_data, model_url, parameter, value
):
    response = staff_client.get(f"/admin/{model_url}/", {parameter: value})

    assert response.status_code in (200, 302, 400)
    if response.status_code == 200:
        assert list(response.context["cl"].result_list) == []
    assert_no_8003_data(html(response))


def test_client_staff_search_for_another_clients_reference_finds_nothing(staff_client, tenant_data):
    for url in ("/admin/notifications/notification/", "/admin/notifications/delivery/"):
        response = staff_client.get(url, {"q": tenant_data.other.notification.reference})

        assert list(response.context["cl"].result_list) == []
        assert "PT Pembiayaan Contoh" not in html(response)


# 7. Inline choices of the recipient field


def test_client_staff_medium_recipient_choices_are_the_applications_own_fields(
    staff_client, tenant_data
):
    own = tenant_data.own.application

    response = staff_client.get(f"/admin/clients/application/{own.pk}/change/")

    medium_form = response.context["inline_admin_formsets"][1].formset.forms[0]
    offered = set(medium_form.fields["recipient_field"].queryset)
    assert offered == set(own.fields.all())


def test_client_staff_cannot_point_a_medium_at_another_applications_field(
    staff_client, tenant_data
):
    own, other = tenant_data.own.application, tenant_data.other.application
    sms = own.media.get(medium="sms")
    other_msisdn = other.fields.get(name="msisdn")
    data = form_data(staff_client.get(f"/admin/clients/application/{own.pk}/change/"))
    prefix = next(
        key.removesuffix("id")
        for key, value in data.items()
        if key.startswith("media-") and key.endswith("-id") and value == str(sms.pk)
    )
    data[f"{prefix}recipient_field"] = str(other_msisdn.pk)

    response = staff_client.post(f"/admin/clients/application/{own.pk}/change/", data)

    assert response.status_code == 200
    media_formset = response.context["inline_admin_formsets"][1].formset
    errors = [form.errors.get("recipient_field") for form in media_formset.forms]
    assert any("Select a valid choice" in str(error) for error in errors if error)
    assert ApplicationMedium.objects.get(pk=sms.pk).recipient_field.name == "msisdn"
    assert ApplicationMedium.objects.get(pk=sms.pk).recipient_field.application == own


def test_client_staff_edits_its_own_application_with_its_inlines(staff_client, tenant_data):
    own = tenant_data.own.application
    data = form_data(staff_client.get(f"/admin/clients/application/{own.pk}/change/"))
    data["brand_name"] = "NUSANTARA"
    data["fields-TOTAL_FORMS"] = str(int(data["fields-TOTAL_FORMS"]) + 1)
    new_row = f"fields-{int(data['fields-TOTAL_FORMS']) - 1}"
    data.update({f"{new_row}-name": "accountNo", f"{new_row}-type": "text"})

    response = staff_client.post(f"/admin/clients/application/{own.pk}/change/", data)

    assert response.status_code == 302
    own.refresh_from_db()
    assert own.brand_name == "NUSANTARA"
    assert own.fields.filter(name="accountNo").exists()


# 8. Secrets and the task queue are off limits


def test_client_staff_cannot_open_the_secret_key_admin(staff_client, client_8002):
    key, _ = issue_key(client_8002)

    assert staff_client.get("/admin/clients/secretkey/").status_code == 403
    assert staff_client.get(f"/admin/clients/secretkey/{key.pk}/change/").status_code == 403


def test_client_staff_sees_neither_secret_keys_nor_batch_password_of_its_own_client(
    staff_client, client_8002
):
    key, secret = issue_key(client_8002)
    client_8002.set_batch_password("zip-password-8002")
    client_8002.save()

    response = staff_client.get(f"/admin/clients/client/{client_8002.pk}/change/")

    assert response.status_code == 200
    page = html(response)
    for hidden in ("new_batch_password", "Batch password", key.fingerprint, secret):
        assert hidden not in page
    assert "zip-password-8002" not in page
    assert client_8002.batch_password_encrypted not in page


def test_client_staff_cannot_change_its_own_client(staff_client, client_8002):
    data = {
        "client_id": "8002",
        "name": "Renamed",
        "is_active": "on",
        "time_zone": "Asia/Jakarta",
        "new_batch_password": "chosen-by-staff",
        "secret_keys-TOTAL_FORMS": "0",
        "secret_keys-INITIAL_FORMS": "0",
    }

    response = staff_client.post(f"/admin/clients/client/{client_8002.pk}/change/", data)

    assert response.status_code == 403
    client_8002.refresh_from_db()
    assert (client_8002.name, client_8002.batch_password_encrypted) == (
        "PT Bank Demo Nusantara",
        "",
    )


@pytest.mark.parametrize(
    "url",
    [
        "/admin/django_q/",
        "/admin/django_q/schedule/",
        "/admin/django_q/schedule/add/",
        "/admin/django_q/success/",
        "/admin/django_q/failure/",
        "/admin/django_q/ormq/",
        "/admin/clients/secretkey/",
        "/admin/auth/user/",
        "/admin/auth/group/",
    ],
)
def test_client_staff_cannot_open_task_queue_key_or_user_pages(staff_client, client_8002, url):
    assert staff_client.get(url).status_code in (403, 404)


def test_client_staff_admin_index_lists_only_its_allowed_models(staff_client, client_8002):
    response = staff_client.get("/admin/")

    models = {
        (app["app_label"], model["object_name"])
        for app in response.context["app_list"]
        for model in app["models"]
    }
    assert models == {
        ("clients", "Client"),
        ("clients", "Application"),
        ("templates_app", "ContentTemplate"),
        ("notifications", "Notification"),
        ("notifications", "Delivery"),
        ("batches", "Batch"),
        ("batches", "RejectedLine"),
        ("batches", "GatewayAccount"),
        ("batches", "GatewayEvent"),
        ("batches", "OpenPGPPlatformKey"),
        ("batches", "OpenPGPClientKey"),
    }


def test_client_staff_of_two_clients_sees_both_and_no_third(client, tenant_data, client_8002):
    third = Client.objects.create(client_id="8004", name="PT Ketiga")
    both = tenant_data.other.client
    user = UserFactory(role="client_staff", clients=[client_8002, both])
    client.force_login(user)

    response = client.get("/admin/clients/client/")

    assert set(response.context["cl"].result_list) == {client_8002, both}
    assert third.name not in html(response)


def test_client_staff_linked_to_no_client_sees_empty_lists_and_no_choices(client, tenant_data):
    client.force_login(UserFactory(role="client_staff"))

    notifications = client.get("/admin/notifications/notification/")
    add_application = client.get("/admin/clients/application/add/")

    assert list(notifications.context["cl"].result_list) == []
    form = add_application.context["adminform"].form
    assert "client" not in form.initial
    assert list(form.fields["client"].queryset) == []
