"""django-q2 tasks of the platform as a whole: thin wrappers, safe to run twice."""

from kokatto_site.retention import personal_data_purge


def purge_personal_data() -> dict[str, int]:
    """The daily "purge personal data" schedule (a migration of this app)."""
    return personal_data_purge()
