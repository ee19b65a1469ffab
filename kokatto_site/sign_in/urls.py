from django.urls import path

from kokatto_site.sign_in import views

app_name = "two_factor"

urlpatterns = [
    path("enrol/", views.enrol, name="enrol"),
    path("verify/", views.verify, name="verify"),
]
