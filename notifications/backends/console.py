"""The embedded default: print what would be sent, so `make run` shows it."""

import sys

from notifications.backends.base import ChannelBackend, SendResult


class ConsoleBackend(ChannelBackend):
    name = "console"

    def __init__(self, stream=None):
        self.stream = stream

    def send(self, delivery) -> SendResult:
        stream = self.stream or sys.stdout
        subject = f" «{delivery.subject}»" if delivery.subject else ""
        stream.write(
            f"[{delivery.medium} to {delivery.recipient}]{subject} {delivery.body}\n{'-' * 72}\n"
        )
        stream.flush()
        return SendResult.sent(f"console-{delivery.pk}")
