"""The three roles of the control panel, and what they mean for which clients a user sees.

Roles are Django groups. Their permissions, which span every app, are declared
with the rest of the platform's wiring (kokatto_site/role_permissions.py).
Row-level scoping (client staff see only their own clients' data) is applied
by `clients.admin_scoping`, using `visible_clients` below.
"""

from clients.models import Client

OPERATORS = "Operators"
CLIENT_STAFF = "Client staff"
SUPPORT = "Support"


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
    if not user.is_authenticated or not user.is_active:
        return Client.objects.none()
    if sees_all_clients(user):
        return Client.objects.all()
    if CLIENT_STAFF in _group_names(user):
        return Client.objects.filter(staff=user)
    return Client.objects.none()
