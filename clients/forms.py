"""Forms of the control panel's client pages that check more than one row."""

from django import forms
from django.core.exceptions import ValidationError

from clients.parameter_validation import FieldFormat
from clients.schema_changes import schema_change_problems

SCHEMA_CHANGE_REFUSED = "This change would break templates that use the field; change them first."


class FieldSchemaFormSet(forms.BaseInlineFormSet):
    """An application's fields as edited together; refuses a change that breaks its templates."""

    def clean(self):
        super().clean()
        if self.instance.pk is None or any(self.errors):
            return
        fields = {
            form.cleaned_data["name"]: FieldFormat(
                form.cleaned_data["type"], form.cleaned_data.get("date_format") or ""
            )
            for form in self.forms
            if form.cleaned_data and not self._should_delete_form(form)
        }
        problems = schema_change_problems(application=self.instance, fields=fields)
        if problems:
            raise ValidationError([SCHEMA_CHANGE_REFUSED, *problems])
