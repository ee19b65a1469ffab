"""The API's documentation (/api/docs/, /api/schema/): public, or for the admin's users only."""

from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse


def api_docs_view(view):
    """`view` for anyone while API_DOCS_PUBLIC is on; otherwise for those the admin lets in.

    Anyone else is sent to the admin's sign-in, and back here after it. The admin
    site decides who is in (an active staff user, and whatever else the site asks),
    so the documentation is never easier to reach than the admin itself.
    """

    @wraps(view)
    def api_docs(request, *args, **kwargs):
        if settings.API_DOCS_PUBLIC or admin.site.has_permission(request):
            return view(request, *args, **kwargs)
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))

    return api_docs
