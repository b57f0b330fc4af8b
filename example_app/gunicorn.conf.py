"""Gunicorn settings for the example app.

    gunicorn -c example_app/gunicorn.conf.py 'example_app:create_app()'

On a graceful stop (SIGTERM to the master) gunicorn stops each worker, which runs
``worker_exit`` and then exits normally. flask-apikeys writes its buffered key usage
at interpreter exit anyway (``atexit``); the hook below does it a little earlier,
while the worker is certainly still whole. A worker killed with SIGKILL (or past
``graceful_timeout``) loses what it had buffered: see docs/usage-and-rate-limits.md.
"""

from __future__ import annotations

from typing import Any

bind = "127.0.0.1:8000"
workers = 2
graceful_timeout = 30  # seconds a worker gets to finish requests and flush usage

# The access log (on with --access-logfile FILE, or "-" for stdout) never holds a key.
# Gunicorn's default format has %(u)s, the user name of HTTP Basic auth, so a client
# calling ``curl -u "$KEY:"`` would write the key into the log; %(r)s, the request line,
# would write any query string. This format has neither: the method and the path only,
# never a header, the user name or the query. See docs/security.md.
access_log_format = '%(h)s - - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss "%(a)s"'


def worker_exit(server: Any, worker: Any) -> None:
    from flask_apikeys.service.usage import flush_all

    flush_all()
