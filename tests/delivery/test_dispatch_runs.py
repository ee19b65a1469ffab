"""A dispatch task keeps its worker busy: chunk after chunk, for DELIVERY_TASK_SECONDS."""

from notifications.models import Delivery
from notifications.tasks import dispatch_deliveries
from tests.factories import accept_notification


def accept_sms(client, count: int, broker) -> None:
    for number in range(count):
        accept_notification(client, reference=f"R-{number}")
    broker.purge_queue()  # intake queued a dispatch after each one: the test runs it


def test_a_dispatch_task_sends_chunk_after_chunk_and_queues_no_successor_when_one_comes_back_short(
    client_8002, sms_template, settings, broker, capsys
):
    settings.DELIVERY_CHUNK_SIZE = 2
    accept_sms(client_8002, 5, broker)

    assert dispatch_deliveries() == 5

    assert set(Delivery.objects.values_list("status", flat=True)) == {"SENT"}
    assert capsys.readouterr().out.count("[sms to +6281234567890]") == 5
    assert broker.queue_size() == 0


def test_a_dispatch_task_out_of_time_queues_its_successor_for_the_rest(
    client_8002, sms_template, settings, broker
):
    settings.DELIVERY_CHUNK_SIZE = 2
    settings.DELIVERY_TASK_SECONDS = 0  # time is up after the first chunk
    accept_sms(client_8002, 5, broker)

    assert dispatch_deliveries() == 2

    statuses = list(Delivery.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["SENT", "SENT", "PENDING", "PENDING", "PENDING"]
    assert broker.queue_size() == 1


def test_a_dispatch_task_whose_last_chunk_is_exactly_full_queues_a_successor_that_finds_nothing(
    client_8002, sms_template, settings, broker
):
    settings.DELIVERY_CHUNK_SIZE = 2
    settings.DELIVERY_TASK_SECONDS = 0
    accept_sms(client_8002, 2, broker)

    assert dispatch_deliveries() == 2
    assert broker.queue_size() == 1
    broker.purge_queue()

    assert dispatch_deliveries() == 0
    assert broker.queue_size() == 0
