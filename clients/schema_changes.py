"""Who may refuse a change to an application's fields: the apps whose data names them.

Templates name an application's fields, so editing the fields could break them. The
templates stand above this app (they use its fields, not the other way round), so
this app does not ask them directly: an app that uses the fields registers a check
here when Django starts (templates_app/apps.py), and the application's admin form
asks every registered check before it saves (clients/forms.py).
"""

from collections.abc import Callable, Mapping

from clients.parameter_validation import FieldFormat

# check(application=, fields=) -> problems: one message per thing the change would break.
SchemaChangeCheck = Callable[..., list[str]]

_checks: list[SchemaChangeCheck] = []


def schema_change_check_register(check: SchemaChangeCheck) -> None:
    """Ask `check` before an application's field schema changes (once per check)."""
    if check not in _checks:
        _checks.append(check)


def schema_change_problems(*, application, fields: Mapping[str, FieldFormat]) -> list[str]:
    """What every registered check says would break if the application's fields became `fields`
    (the whole new schema, name -> format); an empty list means the change is safe."""
    return [
        problem for check in _checks for problem in check(application=application, fields=fields)
    ]
