"""A settings module for ``rq worker -c workers.rqconfig``: RQ's workers then use the Redis that
``emit`` uses (COLLECTOR_REDIS_URL, else the connection file of ``collector serve``, else the
default), so a worker on a compute node needs no URL, and no password on its command line (which
``ps`` shows to every user of the node)."""

from workers.settings import EmitterSettings

REDIS_URL = EmitterSettings.from_env().redis_url
