"""Checks of an application against its saved field schema, for the application page.

The model's own `clean()` checks what one row can tell; these read the
application's fields, which the page saves after the application itself.
"""

from clients.models import Application, FieldType
from clients.parameter_validation import validate_parameters


def application_check(*, application: Application) -> dict[str, str]:
    """What is wrong with the application given its saved fields: a message by model field.

    A new application has no fields yet and passes. Its expiry field must be one
    of its date fields, and its sample values (a dict of texts, as `clean()`
    requires), if any, must pass the schema as a notification's would.
    """
    if application.pk is None:
        return {}
    problems = {}
    if (
        application.expire_after_field
        and not application.fields.filter(
            name=application.expire_after_field, type=FieldType.DATE
        ).exists()
    ):
        problems["expire_after_field"] = "Name one of this application's date fields."
    # An empty sample means "none yet"; a given one must be a valid notification.
    if application.sample_values:
        result = validate_parameters(
            fields=application.fields.all(),
            values=application.sample_values,
            application_code=application.code,
        )
        if not result.is_valid:
            details = "; ".join(f"{name}: {' '.join(m)}" for name, m in result.errors.items())
            problems["sample_values"] = f"The sample does not pass the schema: {details}"
    return problems
