"""template_preview: the typed parts cleaned as saving stores them, then checked and rendered."""

from templates_app.previews import template_preview


def test_line_breaks_are_stored_and_counted_as_one_character(sms_template, app_8002):
    preview = template_preview(
        application=app_8002, medium="sms", typed={"body": "Bank Demo:\r\n[customerName]"}
    )

    assert preview.parts["body"] == "Bank Demo:\n[customerName]"
    assert preview.check.preview["body"] == "Bank Demo:\nJohn Doe"
    assert preview.check.sms.characters == len("Bank Demo:\nJohn Doe")


def test_the_html_part_loses_what_an_email_may_not_carry(email_template, app_8002):
    preview = template_preview(
        application=app_8002,
        medium="email",
        typed={
            "subject": "Reminder",
            "body": "Dear [customerName]",
            "html_body": '<p onclick="steal()">Dear [customerName]</p><script>x()</script>',
        },
    )

    assert preview.parts["html_body"] == "<p>Dear [customerName]</p>"
    assert preview.check.is_valid


def test_a_part_not_typed_is_empty(sms_template, app_8002):
    preview = template_preview(application=app_8002, medium="sms", typed={"body": "Bank Demo"})

    assert preview.parts == {"subject": "", "body": "Bank Demo", "html_body": ""}


def test_without_an_application_or_a_medium_the_parts_are_cleaned_but_not_checked(app_8002):
    for application, medium in ((None, "sms"), (app_8002, "")):
        preview = template_preview(
            application=application, medium=medium, typed={"body": "[saldo]\r\n"}
        )

        assert preview.parts["body"] == "[saldo]\n"
        assert preview.check.is_valid
        assert preview.check.preview == {}


def test_an_unknown_field_is_an_error_of_its_part(sms_template, app_8002):
    preview = template_preview(
        application=app_8002, medium="sms", typed={"body": "Bank Demo [saldo]"}
    )

    assert not preview.check.is_valid
    assert "[saldo] at line 1, column 11" in preview.check.errors["body"][0]


def test_the_answer_of_the_live_preview_carries_the_sms_figures_it_shows(sms_template, app_8002):
    answer = template_preview(
        application=app_8002, medium="sms", typed={"body": "Bank Demo 🙂"}
    ).as_json()

    assert answer["valid"] is True
    assert answer["preview"] == {"subject": "", "body": "Bank Demo 🙂", "html_body": ""}
    assert answer["sms"] == {
        "characters": 11,
        "encoding": "UCS-2",
        "segments": 1,
        "units": 12,
        "remaining": 58,
    }


def test_the_answer_has_no_sms_figures_for_an_email(email_template, app_8002):
    answer = template_preview(
        application=app_8002,
        medium="email",
        typed={"subject": "Hi [customerName]", "body": "Dear [customerName]"},
    ).as_json()

    assert answer["sms"] is None
