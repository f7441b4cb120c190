"""Sends N no-op tasks with apply_async, then waits until the workers ran them all.
Usage: python celery_producer.py <jobs>"""
import os
import sys
import time

import redis

from celery_tasks import noop

total = int(sys.argv[1])
counter = redis.Redis.from_url(os.environ["PEERS_COUNTER"])
for _ in range(total):
    noop.apply_async()
while int(counter.get("done") or 0) < total:
    time.sleep(0.01)
