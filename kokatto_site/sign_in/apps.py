from django.apps import AppConfig


class SignInConfig(AppConfig):
    name = "kokatto_site.sign_in"
    label = "sign_in"
    verbose_name = "Sign-in"
