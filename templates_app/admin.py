import difflib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from clients.admin_scoping import (
    ApplicationFilter,
    ClientFilter,
    ClientScopedAdmin,
    ReadOnlyInline,
    parse_id,
    scoped_foreign_key_queryset,
)
from templates_app.models import CONTENT_FIELDS, ContentTemplate, TemplateVersion
from templates_app.previews import template_preview
from templates_app.template_checks import PART_ESCAPES_HTML
from templates_app.versions import template_restore, template_save

# difflib's side-by-side table pairs each changed line with the others and
# compares them character by character: 1,000 changed lines took 30 s of a
# worker, and a line past about 70,000 characters (minified HTML) overflowed
# its recursion. Larger versions are shown as saved, without a comparison.
SIDE_BY_SIDE_MAX_LINES = 100
SIDE_BY_SIDE_MAX_CHARACTERS = 20_000


def version_comparison(before: str, after: str, labels: tuple[str, str]) -> str:
    """HTML comparing two versions of a template part side by side, or `after` alone if large."""
    before_lines, after_lines = before.splitlines(), after.splitlines()
    lines = max(len(before_lines), len(after_lines))
    characters = max(len(before), len(after))
    if lines > SIDE_BY_SIDE_MAX_LINES or characters > SIDE_BY_SIDE_MAX_CHARACTERS:
        return format_html(
            "<p>This part is too large to compare side by side ({} lines, {} characters); "
            "{} as saved:</p><pre>{}</pre>",
            f"{lines:,}",
            f"{characters:,}",
            labels[1],
            after,
        )
    # HtmlDiff escapes the texts it compares.
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(before_lines, after_lines, *labels)
    return mark_safe(table)  # noqa: S308


class ContentTemplateForm(forms.ModelForm):
    class Meta:
        model = ContentTemplate
        fields = ["application", "medium", "subject", "body", "html_body", "provider_template_name"]
        widgets = {"body": forms.Textarea(attrs={"rows": 8, "cols": 80})}

    def clean(self):
        cleaned = super().clean()
        typed = {part: cleaned[part] for part in PART_ESCAPES_HTML if part in cleaned}
        preview = template_preview(
            application=cleaned.get("application"),
            medium=cleaned.get("medium") or "",
            typed=typed,
            template_pk=self.instance.pk,
        )
        cleaned.update({part: preview.parts[part] for part in typed})
        self.template_warnings = preview.check.warnings
        for part, problems in preview.check.errors.items():
            for problem in problems:
                self.add_error(part, problem)
        return cleaned


class TemplateVersionInline(ReadOnlyInline):
    model = TemplateVersion
    fields = ["number", "created_at", "created_by", "change_summary", "compare"]
    ordering = ["-number"]
    verbose_name_plural = "history"

    @admin.display(description="")
    def compare(self, version):
        url = reverse(
            "admin:templates_app_contenttemplate_version",
            args=[version.template_id, version.number],
        )
        return format_html('<a href="{}">show, diff, restore</a>', url)


@admin.register(ContentTemplate)
class ContentTemplateAdmin(ClientScopedAdmin):
    form = ContentTemplateForm
    client_path = "application__client"
    list_display = ["application", "medium", "updated_at"]
    list_filter = [ClientFilter, ApplicationFilter, "medium"]
    list_select_related = ["application__client"]
    search_fields = ["application__code", "subject", "body"]
    autocomplete_fields = ["application"]
    fields = ["application", "medium", "subject", "body", "html_body", "provider_template_name"]
    inlines = [TemplateVersionInline]
    change_form_template = "admin/templates_app/contenttemplate/change_form.html"

    class Media:
        js = ["templates_app/preview.js"]
        css = {"all": ["templates_app/preview.css"]}

    def save_model(self, request, obj, form, change):
        version = template_save(template=obj, user=request.user)
        self.message_user(request, f"Saved as version {version.number}.")
        for warning in getattr(form, "template_warnings", []):
            self.message_user(request, warning, messages.WARNING)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(self.preview_view), name="templates_app_contenttemplate_preview"),
            path(
                "<path:object_id>/versions/<int:number>/",
                wrap(self.version_view),
                name="templates_app_contenttemplate_version",
            ),
            path(
                "<path:object_id>/versions/<int:number>/restore/",
                wrap(self.restore_view),
                name="templates_app_contenttemplate_restore",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """Render the typed template with the application's sample, with the real renderer."""
        if request.method != "POST":
            return JsonResponse({"error": "POST the template form."}, status=405)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        # The applications the form offers this user.
        choices = scoped_foreign_key_queryset(
            ContentTemplate._meta.get_field("application"), request
        )
        application = choices.filter(pk=parse_id(request.POST.get("application", ""))).first()
        if application is None:
            return JsonResponse({"error": "Choose one of your applications."}, status=404)
        medium = request.POST.get("medium", "")
        if not application.media.filter(medium=medium).exists():
            return JsonResponse(
                {"error": f"{application.code} does not send {medium!r}."}, status=400
            )
        preview = template_preview(
            application=application,
            medium=medium,
            typed={part: request.POST.get(part, "") for part in PART_ESCAPES_HTML},
            template_pk=parse_id(request.POST.get("template", "")),
        )
        return JsonResponse(preview.as_json())

    def _version(self, request, object_id, number):
        template = self.get_object(request, object_id)
        if template is None:
            raise Http404
        return template, get_object_or_404(template.versions, number=number)

    def version_view(self, request, object_id, number):
        template, version = self._version(request, object_id, number)
        previous = template.versions.filter(number__lt=number).order_by("-number").first()
        diffs = []
        for part in CONTENT_FIELDS:
            before = getattr(previous, part) if previous else ""
            after = getattr(version, part)
            if before or after:
                labels = (
                    f"version {previous.number}" if previous else "(nothing)",
                    f"version {version.number}",
                )
                diffs.append((part.replace("_", " "), version_comparison(before, after, labels)))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{template}: version {version.number}",
            "template_obj": template,
            "version": version,
            "previous": previous,
            "diffs": diffs,
            "can_restore": self.has_change_permission(request, template),
        }
        return TemplateResponse(
            request, "admin/templates_app/contenttemplate/version.html", context
        )

    def restore_view(self, request, object_id, number):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        template, version = self._version(request, object_id, number)
        if not self.has_change_permission(request, template):
            raise PermissionDenied
        restored = template_restore(version=version, user=request.user)
        self.message_user(
            request, f"Version {number} restored as version {restored.number}.", messages.SUCCESS
        )
        return HttpResponseRedirect(
            reverse("admin:templates_app_contenttemplate_change", args=[template.pk])
        )
