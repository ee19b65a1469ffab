"""JSON or XML: chosen by the `format` parameter, else by the Accept header."""

import re
from xml.etree import ElementTree

from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

from notifications.api.parameters import read_parameters

# Everything outside XML 1.0's Char production: C0 controls but tab, LF and CR, lone
# surrogates, U+FFFE and U+FFFF. No XML 1.0 document can hold them, not even as &#…;.
_NOT_XML_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_QUERY_FORMAT = re.compile(r"(?:^|&)format=(json|xml)(?:&|$)")


def xml_text(value) -> str:
    """`value` as text an XML 1.0 parser reads back: what XML cannot carry becomes U+FFFD."""
    return _NOT_XML_CHARACTER.sub("\ufffd", str(value))


class XMLRenderer(BaseRenderer):
    """<response> with one child per field; errors and deliveries as nested lists.

    `errors` becomes <errors><error field="name">message</error>…</errors>: a
    field name is data (it may be any key a client sent), so it is an attribute,
    never an element name. Texts go through xml_text: a request may hold any
    character, an answer only those XML 1.0 allows.
    """

    media_type = "application/xml"
    format = "xml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        root = ElementTree.Element("response")
        for name, value in (data or {}).items():
            element = ElementTree.SubElement(root, name)
            if name == "errors":
                for field_name, messages in value.items():
                    for message in messages:
                        error = ElementTree.SubElement(element, "error", field=xml_text(field_name))
                        error.text = xml_text(message)
            elif name == "deliveries":
                for delivery in value:
                    item = ElementTree.SubElement(element, "delivery")
                    for key, text in delivery.items():
                        ElementTree.SubElement(item, key).text = xml_text(text)
            else:
                element.text = xml_text(value)
        return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


class NotifJSONRenderer(JSONRenderer):
    format = "json"
    # Non-ASCII names stay readable: the body is UTF-8 anyway.
    ensure_ascii = False


class FormatNegotiation(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        by_format = {renderer.format: renderer for renderer in renderers}
        wanted = _format_parameter(request)
        if wanted not in by_format:
            accept = request.META.get("HTTP_ACCEPT", "")
            wanted = "xml" if "application/xml" in accept or "text/xml" in accept else "json"
        renderer = by_format[wanted]
        return renderer, renderer.media_type


def _format_parameter(request) -> str:
    try:
        return read_parameters(request).get("format", "")
    except APIException:
        # The request is refused anyway; answer in the format it seems to want, read
        # from the raw query string (its QueryDict may be what failed: too many fields).
        match = _QUERY_FORMAT.search(request.META.get("QUERY_STRING", ""))
        return match.group(1) if match else ""
