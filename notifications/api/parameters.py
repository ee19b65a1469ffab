"""Reading a /notif request's parameters: query string, form body or JSON object."""

from rest_framework.exceptions import ParseError

from notifications.api.errors import ApiError


def read_parameters(request) -> dict[str, str]:
    """Every parameter of the request as text, read once and kept on the request.

    GET takes the query string; POST takes the body (form-encoded or a JSON
    object of scalars) plus any query-string parameters. Raises ApiError
    VALIDATION_ERROR for a parameter given twice, a malformed body, or a JSON
    value that is not a string or a whole number.
    """
    if hasattr(request, "kokatto_parameters"):
        return request.kokatto_parameters
    pairs = list(_query_pairs(request))
    if request.method == "POST":
        pairs += list(_body_pairs(request))
    parameters, errors = {}, {}
    for name, value in pairs:
        if name in parameters:
            errors[name] = ["Given more than once."]
        parameters[name] = value
    request.kokatto_reference = parameters.get("clientNotifRefId", "")
    if errors:
        raise ApiError(
            code="VALIDATION_ERROR",
            message="A parameter is given more than once.",
            http_status=400,
            errors=errors,
        )
    request.kokatto_parameters = parameters
    return parameters


def _query_pairs(request):
    for name, values in request.query_params.lists():
        for value in values:
            yield name, value


def _body_pairs(request):
    try:
        data = request.data
    except ParseError as exc:
        raise ApiError(
            code="VALIDATION_ERROR", message=f"Malformed body: {exc.detail}", http_status=400
        ) from None
    if hasattr(data, "lists"):
        for name, values in data.lists():
            for value in values:
                yield name, value
        return
    if not isinstance(data, dict):
        raise ApiError(
            code="VALIDATION_ERROR", message="A JSON body must be an object.", http_status=400
        )
    for name, value in data.items():
        # bool is an int in Python; true/false are not pre-agreed values.
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ApiError(
                code="VALIDATION_ERROR",
                message="JSON values must be strings or whole numbers.",
                http_status=400,
                errors={name: ["Must be a string or a whole number."]},
            )
        yield name, str(value)
