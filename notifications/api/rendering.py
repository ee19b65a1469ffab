"""JSON or XML: chosen by the `format` parameter, else by the Accept header."""

from xml.etree import ElementTree

from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

from notifications.api.errors import ApiError
from notifications.api.parameters import read_parameters


class XMLRenderer(BaseRenderer):
    """<response> with one child per field; errors and deliveries as nested lists.

    `errors` becomes <errors><error field="name">message</error>…</errors>: a
    field name is data (it may be any key a client sent), so it is an attribute,
    never an element name.
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
                        error = ElementTree.SubElement(element, "error", field=field_name)
                        error.text = message
            elif name == "deliveries":
                for delivery in value:
                    item = ElementTree.SubElement(element, "delivery")
                    for key, text in delivery.items():
                        ElementTree.SubElement(item, key).text = str(text)
            else:
                element.text = str(value)
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
    except ApiError:
        # The request is refused anyway; answer in the format it seems to want.
        return request.query_params.get("format", "")
