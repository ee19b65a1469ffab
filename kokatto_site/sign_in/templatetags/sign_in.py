from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def admin_two_factor_required() -> bool:
    return settings.ADMIN_TWO_FACTOR_REQUIRED


@register.filter
def minutes(duration) -> int:
    """A timedelta in whole minutes, for the lock-out page."""
    return round(duration.total_seconds() / 60)
