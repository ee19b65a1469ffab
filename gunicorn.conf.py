"""gunicorn's settings for the web tier; gunicorn reads ./gunicorn.conf.py by itself when
started from the project folder (`gunicorn kokatto_site.wsgi -w 4 -b 0.0.0.0:8000`).

Prometheus in multiprocess mode (README "Watching the platform"): with
PROMETHEUS_MULTIPROC_DIR set, every worker writes its metrics to files in that folder
and /metrics sums them, so a scrape sees the whole machine whichever worker answers.
The folder is emptied before the machine's services start (not here: the task queue's
and the gateway's processes write there too, and their counters would vanish).
"""

import os

from prometheus_client import multiprocess


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    # A dead worker's counters stay in the sums; its live gauges leave them.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
