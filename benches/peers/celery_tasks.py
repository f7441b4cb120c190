"""A no-op Celery task on a Redis broker, results ignored. Each run counts itself on a
second Redis (not the broker), so the broker's command statistics stay Celery's own."""
import os

import redis
from celery import Celery

app = Celery("peers", broker=os.environ["PEERS_BROKER"])
app.conf.task_ignore_result = True
app.conf.worker_prefetch_multiplier = 16
counter = redis.Redis.from_url(os.environ["PEERS_COUNTER"])


@app.task
def noop():
    counter.incr("done")
