"""What each role of the control panel may do, in every app.

Roles are Django groups (named in clients/roles.py) whose permissions are
declared here and written by data migrations (`sync_role_groups`), so every
environment has the same roles. A new model gets its permissions by being named
here and by a migration of this app (kokatto_site/migrations/) that calls
`sync_role_groups` again and depends on the migration that adds the model.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

from clients.roles import CLIENT_STAFF, OPERATORS, SUPPORT

# Every permission of these apps goes to operators: among them the file-transfer gateway's
# bans and failed logins (batches.gatewayscore, batches.gatewayloginfailure), which they
# view and lift (delete) and no other role sees; the admin adds and changes neither.
# Also the records of who read personal data (notifications.personaldataaccess) and the
# retention runs: operators only, and the admin edits and deletes neither.
OPERATOR_APPS = ("clients", "templates_app", "notifications", "batches", "django_q", "auth")

CLIENT_STAFF_PERMISSIONS = {
    "clients.client": ("view",),
    "clients.application": ("view", "add", "change"),
    "clients.field": ("view", "add", "change", "delete"),
    "clients.applicationmedium": ("view", "add", "change", "delete"),
    "templates_app.contenttemplate": ("view", "add", "change", "delete"),
    "templates_app.templateversion": ("view",),
    "notifications.notification": ("view",),
    "notifications.delivery": ("view",),
    "notifications.deliveryevent": ("view",),
    "notifications.clientcallback": ("view",),
    "batches.batch": ("view",),
    "batches.rejectedline": ("view",),
    # Their own gateway accounts: seen, never a password; "change" only to save the keys
    # they add or remove (every account field is read-only for them).
    "batches.gatewayaccount": ("view", "change"),
    "batches.gatewaypublickey": ("view", "add", "delete"),
    # Their own client's gateway audit trail (logins and file operations).
    "batches.gatewayevent": ("view",),
    # Their own client's OpenPGP keys: fingerprints and the platform's public key, to download;
    # "change" to set their client's own public key (upload and confirm, batches/openpgp_admin.py).
    "batches.openpgpplatformkey": ("view",),
    "batches.openpgpclientkey": ("view", "change"),
}

SUPPORT_PERMISSIONS = dict.fromkeys(CLIENT_STAFF_PERMISSIONS, ("view",))

# Sign-in security (kokatto_site/sign_in/): operators see lock-outs, failures and
# second-factor devices, and unlock a user or reset a second factor by deleting them;
# nobody adds them by hand.
OPERATOR_SIGN_IN_PERMISSIONS = {
    "axes.accessattempt": ("view", "delete"),
    "axes.accessfailurelog": ("view", "delete"),
    "axes.accesslog": ("view",),
    "otp_totp.totpdevice": ("view", "delete"),
    "otp_static.staticdevice": ("view", "delete"),
}


def sync_role_groups(apps) -> None:
    """Create the three groups and set their permissions to exactly the declared ones.

    Called from data migrations with the migration's `apps`. Permissions are
    normally created after all migrations ran, so they are created here first.
    """
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, apps=apps, verbosity=0)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.set(
        Permission.objects.filter(content_type__app_label__in=OPERATOR_APPS)
        | _declared_permissions(Permission, OPERATOR_SIGN_IN_PERMISSIONS)
    )

    for name, spec in ((CLIENT_STAFF, CLIENT_STAFF_PERMISSIONS), (SUPPORT, SUPPORT_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_declared_permissions(Permission, spec))


def _declared_permissions(Permission, spec):
    wanted = Permission.objects.none()
    for model_path, actions in spec.items():
        app_label, model = model_path.split(".")
        # A model newer than the calling migration is skipped here and
        # picked up by the migration that introduces it.
        wanted |= Permission.objects.filter(
            content_type__app_label=app_label,
            codename__in=[f"{action}_{model}" for action in actions],
        )
    return wanted
