"""The no-op tasks the Python peers run (benches/peers/python_peers.py): a Celery app
with a Redis broker and result backend, and a plain function for RQ."""

import os

from celery import Celery

_url = os.environ.get("PEERS_REDIS", "redis://127.0.0.1:6379")
app = Celery("py_tasks", broker=_url, backend=_url)
app.conf.update(task_ignore_result=False, worker_hijack_root_logger=False)


@app.task
def noop():
    return None


def rq_noop():
    return None
