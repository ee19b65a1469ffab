"""Row-level scoping of the control panel: client staff see only their own clients.

Every admin that shows client data derives from `ClientScopedAdmin`, which
filters querysets (list, change, history, delete and autocomplete pages all go
through `get_queryset`), restricts the choices of client and application
foreign keys, and offers list filters whose choices are scoped the same way.
"""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import OperationalError, connections, transaction
from django.utils.functional import cached_property

from clients.models import Application, Client
from clients.roles import sees_all_clients, visible_clients


def scoped_foreign_key_queryset(db_field, request):
    """The choices a user may pick for a Client or Application foreign key, or None."""
    if db_field.related_model is Client:
        return visible_clients(request.user)
    if db_field.related_model is Application:
        return Application.objects.filter(client__in=visible_clients(request.user)).select_related(
            "client"
        )
    return None


def parse_id(value: str) -> int | None:
    """A primary key from a URL parameter, or None for anything that is not one.

    str.isdigit() alone accepts "²" (int() fails) and Arabic-Indic digits, and an
    unbounded number overflows SQLite's integers: each would crash the page or
    be misread.
    """
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


class ScopedForeignKeysMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        queryset = scoped_foreign_key_queryset(db_field, request)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedFilter(admin.SimpleListFilter):
    """Filter by a related row, offering only rows the user may see (small tables).

    `path_attribute` names the ModelAdmin attribute holding the lookup to filter on.
    """

    path_attribute = ""

    def __init__(self, request, params, model, model_admin):
        self.path = getattr(model_admin, self.path_attribute)
        super().__init__(request, params, model, model_admin)

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        pk = parse_id(self.value())
        if pk is None:
            return queryset.none()
        return queryset.filter(**{self.path: pk})


class ClientFilter(ScopedFilter):
    title = "client"
    parameter_name = "client"
    path_attribute = "client_path"

    def lookups(self, request, model_admin):
        return [(str(client.pk), str(client)) for client in visible_clients(request.user)]


class ApplicationFilter(ScopedFilter):
    title = "application"
    parameter_name = "application"
    path_attribute = "application_path"

    def lookups(self, request, model_admin):
        applications = Application.objects.filter(
            client__in=visible_clients(request.user)
        ).select_related("client")
        return [(str(app.pk), str(app)) for app in applications]


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a large table's rows one by one (PostgreSQL).

    An unfiltered list reads the table's row estimate (pg_class). A filtered one asks the
    planner how many rows match: past ESTIMATE_ABOVE, that estimate is the count; below
    it the rows are counted, for at most ADMIN_COUNT_TIMEOUT_MS, after which the
    estimate stands in (a filter no index serves would otherwise scan the table).
    """

    ESTIMATE_ABOVE = 10_000

    @cached_property
    def count(self):
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        if not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                estimate = cursor.fetchone()[0]
        else:
            estimate = self._planner_estimate(queryset, connection)
        if estimate > self.ESTIMATE_ABOVE:
            return estimate
        return self._count_in_time(queryset, connection, estimate)

    def _planner_estimate(self, queryset, connection) -> int:
        try:
            sql, params = queryset.order_by().query.sql_with_params()
        except EmptyResultSet:  # e.g. `pk__in=[]`: a search that found nothing
            return 0
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            [plan] = cursor.fetchone()[0]
        return int(plan["Plan"]["Plan Rows"])

    def _count_in_time(self, queryset, connection, estimate: int) -> int:
        with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            previous = cursor.fetchone()[0]
            try:
                with transaction.atomic(using=queryset.db):
                    cursor.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        [str(settings.ADMIN_COUNT_TIMEOUT_MS)],
                    )
                    count = super().count
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
                    return count
            except OperationalError:  # cancelled by the timeout: the savepoint undid the SET
                return estimate


class ClientScopedAdmin(ScopedForeignKeysMixin, admin.ModelAdmin):
    """Base admin for any model that belongs to a client.

    `client_path` is the lookup from the model to its Client (e.g.
    "application__client"); `application_path` the lookup to its Application.
    """

    client_path = "client"
    application_path = "application"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if sees_all_clients(request.user):
            return queryset
        return queryset.filter(**{f"{self.client_path}__in": visible_clients(request.user)})


class ReadOnlyAdminMixin:
    """Records that only the platform writes: everyone with access reads, nobody edits."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """A history shown under its parent (keys, deliveries, events, versions): never edited here.

    Subclasses list `fields`; all of them are shown read-only.
    """

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
