"""django-q2 tasks: thin wrappers over notifications.dispatch, safe to run twice."""

from django_q.tasks import async_task

from notifications.client_callbacks import client_callbacks_send_due
from notifications.dispatch import dispatch_run
from notifications.dispatch_queue import DISPATCH_TASK, dispatch_started
from notifications.receipts import early_receipts_apply_recorded


def dispatch_deliveries() -> int:
    """Send chunks of due deliveries for up to DELIVERY_TASK_SECONDS; if they still came
    back full then, queue the next run (behind the tasks already waiting).

    Queued after every accepted notification and run every minute by the
    "dispatch due deliveries" schedule (the sweeper), so a lost queue message
    or a crashed worker delays deliveries but loses none.
    """
    dispatch_started()  # before claiming: what is committed from now on queues another run
    run = dispatch_run()
    if run.more:
        async_task(DISPATCH_TASK)
    else:
        # At the end of a burst, and at every sweep: receipts a dead worker left unapplied.
        early_receipts_apply_recorded()
    return run.claimed


def send_client_callbacks() -> int:
    """POST the due client callbacks; queued after each status change and every minute.

    A sweep that ran out of time queues the next one at once, behind the tasks
    already waiting, instead of holding its worker longer.
    """
    sweep = client_callbacks_send_due()
    if sweep.out_of_time:
        async_task("notifications.tasks.send_client_callbacks")
    return sweep.tried
