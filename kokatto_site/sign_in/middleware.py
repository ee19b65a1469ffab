from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

from kokatto_site.sign_in.two_factor import authenticator_of

# What a signed-in user who has not passed the second factor yet may still reach. The login
# page sends a staff user on (to the index, so here) and tells anyone else they may not enter.
OPEN_VIEWS = {"two_factor:enrol", "two_factor:verify", "admin:login", "admin:logout"}


class SecondFactorMiddleware:
    """With ADMIN_TWO_FACTOR_REQUIRED, a session signed in with a password alone reaches no
    page but enrolment, the code prompt, the login page and sign-out: every other view
    redirects to enrolment (no authenticator yet) or to the code prompt.

    After django-otp's OTPMiddleware, which tells whether the session is verified.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not settings.ADMIN_TWO_FACTOR_REQUIRED or not request.user.is_authenticated:
            return None
        if request.user.is_verified() or request.resolver_match.view_name in OPEN_VIEWS:
            return None
        step = "two_factor:verify" if authenticator_of(request.user) else "two_factor:enrol"
        return redirect(f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}")
