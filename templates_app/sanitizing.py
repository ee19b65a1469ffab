"""Email HTML bodies are cleaned when a template is saved, and again once it is filled.

On save: no scripts, styles, event handlers or unknown attributes. Values are
HTML-escaped as they are inserted, which keeps them from opening a tag or
leaving an attribute's quotes, but not from being a whole URL: a customer's
`javascript:alert(1)` in `<a href="[paymentUrl]">`, or `data:text/html;…` in
`<img src="[logo]">`, would be a live link. So the rendered HTML is cleaned again,
with the same rules, before it is stored or sent (templates_app/template_language.py).

The same rules both times, so a template's literal links never change between
the preview and the email: links and images only with the schemes below (and
relative URLs, which lead nowhere in an email). nh3 (ammonia) parses URLs as
browsers do, so `java\tscript:` or ` javascript:` are no way round it.
"""

import nh3

# URL schemes an email's links and images may use.
EMAIL_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


def sanitize_html(html_text: str) -> str:
    """The HTML with everything but safe formatting markup and safe links removed."""
    return nh3.clean(html_text, url_schemes=EMAIL_URL_SCHEMES) if html_text else ""
