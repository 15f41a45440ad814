"""Wake-ups: who waits on what (notify: the in-process notifier) and across nodes (pubsub:
Redis pub/sub). No Flask.
"""
