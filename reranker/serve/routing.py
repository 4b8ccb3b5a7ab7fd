"""The plumbing of the API's routes: a route class that guards every request (key, admission, body cap, every
error answered as JSON), a URL convertor that matches any text, and an app answering 405 for other methods."""

import logging
import uuid
from typing import Any, Callable, Coroutine

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException

from reranker.errors import BackendUnavailable, InputError, RerankerError
from reranker.serve.api_errors import APIError, validation_error
from reranker.serve.serving import RerankAPI

log = logging.getLogger(__name__)


class _AnyText(PathConvertor):
    """Like Starlette's ``path`` convertor, but it matches line breaks too (``.`` alone does not): a model name
    with a newline gets the API's 404, not the Gradio page's."""

    regex = "(?s:.*)"


register_url_convertor("any_text", _AnyText())


def guarded_route_class(api: RerankAPI, *, protected: bool) -> type[APIRoute]:
    """Routes that check the key before reading anything, cap the body, and answer every error as JSON."""

    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            has_body = self.body_field is not None

            async def guarded(request: Request) -> Response:
                try:
                    if protected:
                        api.authorize(request)
                    if not has_body:
                        return await handler(request)
                    with api.admit(request):  # before the body is read: a refused request costs no memory
                        return await handler(_replay(request, await api.read_body(request)))
                except APIError as exc:
                    return exc.response()
                except RequestValidationError as exc:
                    return validation_error(exc, api.max_documents).response()
                except HTTPException as exc:
                    return APIError(exc.status_code, str(exc.detail), headers=exc.headers).response()
                except InputError as exc:
                    return APIError(400, str(exc)).response()
                except BackendUnavailable as exc:
                    return APIError(503, str(exc)).response()
                except RerankerError as exc:
                    log.warning("%s %s failed: %s", request.method, request.url.path, exc)
                    return APIError(500, f"Model problem: {exc}").response()
                except Exception:  # a bug: logged in full here, never shown to the caller
                    reference = uuid.uuid4().hex[:12]
                    log.exception("%s %s failed (reference %s)", request.method, request.url.path, reference)
                    return APIError(500, f"Internal error; the server log has the details (reference {reference}).",
                                    reference=reference).response()

            return guarded

    return GuardedRoute


def _replay(request: Request, body: bytes) -> Request:
    """A copy of ``request`` whose body is the one already read."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return Request(request.scope, receive)


def method_not_allowed(app: FastAPI, routes: list[APIRoute]) -> None:
    """After ``routes``, one route per path answering every other method with 405 (and ``Allow``).

    Without them such a request would fall through to the Gradio page mounted at "/", which answers 404.
    """
    allowed: dict[str, set[str]] = {}
    for route in routes:
        allowed.setdefault(route.path, set()).update(route.methods)
    for path, methods in allowed.items():  # methods=None: any method the routes before did not take
        app.add_route(path, _Refuse(", ".join(sorted(methods))), methods=None, include_in_schema=False)


class _Refuse:
    """An ASGI app answering 405 with ``Allow: <allow>`` (an app, not a function, so it takes every method)."""

    def __init__(self, allow: str):
        self.allow = allow

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        response = APIError(405, f"{scope['method']} is not allowed here; this path serves {self.allow}.",
                            headers={"Allow": self.allow}).response()
        await response(scope, receive, send)
