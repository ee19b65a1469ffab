# The admin tests' two tenants, each with one row of every kind and 8003's markers.
from tests.admin.conftest import tenant_data

__all__ = ["tenant_data"]
