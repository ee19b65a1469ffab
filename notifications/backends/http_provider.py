"""What every provider reached by one HTTP POST a message shares: its requests go side by
side on the worker's own thread, within the provider's agreed rate.

A subclass says what to post for a delivery (`post`) and what the answer means
(`classify`); this sends a dispatcher's group at once (`send_many`, through
notifications/backends/http_side_by_side.py) or one delivery (`send`).
"""

import logging
import time
from collections.abc import Callable

from notifications.backends.base import ChannelBackend, SendResult
from notifications.backends.http import HttpAnswer, HttpClient, HttpFailure
from notifications.backends.http_side_by_side import Post, post_side_by_side
from notifications.backends.ratelimit import ProviderRateLimit, rate_limited
from templates_app.template_language import RENDER_ERROR, RenderError

logger = logging.getLogger(__name__)


class HttpProviderBackend(ChannelBackend):
    sends_many_at_once = True
    # Set by subclasses.
    http: HttpClient
    rate_limit: ProviderRateLimit

    def post(self, delivery) -> Post:
        """The delivery's request to the provider (may raise RenderError)."""
        raise NotImplementedError

    def classify(self, answer: HttpAnswer) -> SendResult:
        raise NotImplementedError

    def send(self, delivery) -> SendResult:
        [(result, _)] = self.send_many([delivery], may_send=lambda delivery: True, tick=lambda: 60)
        return result

    def send_many(
        self, deliveries: list, *, may_send: Callable, tick: Callable[[], float]
    ) -> list[tuple[SendResult | None, float]]:
        """Send the deliveries side by side on this thread, up to the client's pool size at
        once; each only if `may_send(delivery)` says so just before, and a slot of the
        provider's rate comes within half the deadline. Returns each one's result (None:
        not sent) and the seconds its send took."""
        decided: dict[int, tuple[SendResult, float]] = {}  # not posted, with a result
        posts = []
        for index, delivery in enumerate(deliveries):
            try:
                posts.append(self.post(delivery))
            except RenderError as exc:  # the same values the dispatcher rendered, here refused
                posts.append(None)
                decided[index] = (SendResult.permanent(f"{RENDER_ERROR}: {exc}"), 0.0)
            except Exception as exc:  # this delivery's alone: never the rest of the group's
                logger.exception(
                    "%s could not build the request of delivery %s", self.name, delivery.pk
                )
                posts.append(None)
                decided[index] = (SendResult.transient(f"{type(exc).__name__}: {exc}"), 0.0)

        def ready(index: int) -> float | None:
            if posts[index] is None or not may_send(deliveries[index]):
                return None
            started = time.monotonic()
            wait = self.http.deadline / 2
            if not self.rate_limit.acquire(until=started + wait):
                limited = SendResult.transient(rate_limited(wait))
                decided[index] = (limited, time.monotonic() - started)
                return None
            return started

        answers = post_side_by_side(self.http, posts, ready=ready, tick=tick)
        return [
            decided.get(index) or self._result(answer, seconds)
            for index, (answer, seconds) in enumerate(answers)
        ]

    def _result(self, answer, seconds: float) -> tuple[SendResult | None, float]:
        if answer is None:
            return None, 0.0
        if isinstance(answer, HttpFailure):
            return SendResult.transient(str(answer)), seconds
        return self._classified(answer), seconds

    def _classified(self, answer: HttpAnswer) -> SendResult:
        """classify(answer), which must not fail the group's other results if it fails."""
        try:
            return self.classify(answer)
        except Exception as exc:
            logger.exception("%s could not classify an answer", self.name)
            if answer.ok:  # taken: sending it again could deliver it twice
                return SendResult.sent("", f"unreadable answer: {type(exc).__name__}")
            return SendResult.transient(f"HTTP {answer.status}: {type(exc).__name__}")
