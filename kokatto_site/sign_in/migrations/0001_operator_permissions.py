"""Gave operators the sign-in security permissions; kokatto_site's migrations now do it.

Kept (with no operation) because a migration depends on it. See
kokatto_site/migrations/0001_role_groups.py.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_role_groups"),
        ("axes", "0010_accessattemptexpiration"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = []
