"""Email HTML bodies are cleaned on save: no scripts, no event handlers, no javascript: links."""

import nh3


def sanitize_html(html_text: str) -> str:
    """The HTML with everything but safe formatting markup removed (nh3, i.e. ammonia)."""
    return nh3.clean(html_text) if html_text else ""
