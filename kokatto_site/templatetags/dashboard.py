"""`{% dashboard_for user as figures %}`: the front page's figures (kokatto_site/dashboard.py)."""

from django import template

from kokatto_site.dashboard import dashboard_figures

register = template.Library()


@register.simple_tag
def dashboard_for(user) -> dict:
    return dashboard_figures(user=user)


@register.filter
def percent(rate: float | None) -> str:
    """A rate of 0 to 1 as "12.3 %"; "n/a" when there is nothing to divide."""
    return "n/a" if rate is None else f"{100 * rate:.1f} %"
