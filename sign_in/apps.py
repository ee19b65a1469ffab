from django.apps import AppConfig


class SignInConfig(AppConfig):
    name = "sign_in"
    verbose_name = "Sign-in"
