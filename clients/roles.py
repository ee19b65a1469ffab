"""The three roles of the control panel and what each may do.

Roles are Django groups whose permissions are declared here and written by
data migrations (`sync_role_groups`), so every environment has the same roles.
A new model gets its permissions by being named here and by a migration of
its own app that calls `sync_role_groups` again.
Row-level scoping (client staff see only their own clients' data) is applied
by `clients.admin_scoping`, using `visible_clients` below.
"""

from django.contrib.auth.management import create_permissions

OPERATORS = "Operators"
CLIENT_STAFF = "Client staff"
SUPPORT = "Support"

# Every permission of these apps goes to operators.
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
    from django.apps import apps as global_apps

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


def _group_names(user) -> frozenset[str]:
    # Cached on the user object: the admin asks several times per request.
    if not hasattr(user, "_kokatto_group_names"):
        user._kokatto_group_names = frozenset(user.groups.values_list("name", flat=True))
    return user._kokatto_group_names


def is_operator(user) -> bool:
    return user.is_active and (user.is_superuser or OPERATORS in _group_names(user))


def is_support(user) -> bool:
    return user.is_active and SUPPORT in _group_names(user)


def sees_all_clients(user) -> bool:
    """Operators and support read every client's data; everyone else only their own."""
    return is_operator(user) or is_support(user)


def sees_failure_detail(user) -> bool:
    """Whether `user` reads a failed send's full detail (library messages, addresses, the
    provider's words): platform staff do; client staff see its category only
    (notifications/failures.py), which tells them nothing about the private network."""
    return sees_all_clients(user)


def visible_clients(user):
    """A queryset of the clients whose data `user` may see in the control panel."""
    from clients.models import Client

    if not user.is_authenticated or not user.is_active:
        return Client.objects.none()
    if sees_all_clients(user):
        return Client.objects.all()
    if CLIENT_STAFF in _group_names(user):
        return Client.objects.filter(staff=user)
    return Client.objects.none()
