"""Saving templates as immutable versions, and restoring an old one."""

from django.db import transaction

from templates_app.models import CONTENT_FIELDS, ContentTemplate, TemplateVersion


@transaction.atomic
def template_save(*, template: ContentTemplate, user=None, summary: str = "") -> TemplateVersion:
    """Save `template` and return its current version, recording a new one if its content changed.

    `user` is who saved it (None for scripts); `summary` overrides the
    generated "changed body, subject" description.
    """
    # Saving (an UPDATE) locks the template's row until commit, so two
    # concurrent saves cannot take the same version number.
    template.save()
    latest = template.versions.order_by("-number").first()
    content = {name: getattr(template, name) for name in CONTENT_FIELDS}
    if latest is not None and latest.content() == content:
        return latest
    if not summary:
        changed = [
            name.replace("_", " ")
            for name in CONTENT_FIELDS
            if latest is None or getattr(latest, name) != content[name]
        ]
        summary = "created" if latest is None else "changed " + ", ".join(changed)
    return TemplateVersion.objects.create(
        template=template,
        number=(latest.number + 1) if latest else 1,
        created_by=user,
        change_summary=summary,
        **content,
    )


def template_restore(*, version: TemplateVersion, user=None) -> TemplateVersion:
    """Make an old version's content current again, as a new version."""
    template = version.template
    for name, value in version.content().items():
        setattr(template, name, value)
    return template_save(template=template, user=user, summary=f"restored version {version.number}")
