"""What runs in a worker process: the fleet that applies submitted events in order, exactly once.

- submitting: :mod:`.producer` (validate at the :mod:`.door`, insert, nudge after commit),
  :mod:`.submit` (``submit_event`` and friends on the process's runtime), :mod:`.queue_mode`;
- applying: :mod:`.processor` + :mod:`.batch` (the one commit path), :mod:`.staleness`;
- after commit: :mod:`.outbox` (actions, at least once), :mod:`.nudge`, :mod:`.relay`;
- the process: :mod:`.composition` (every piece built from ``Settings``), :mod:`.runtime`,
  :mod:`.tasks` (Celery task names and bodies), :mod:`.celery_config`, :mod:`.app` (the Celery
  app), :mod:`.duties` (timers, relay, heartbeat, pruner), :mod:`.embedded` and :mod:`.worker`
  (drain threads, ``Worker``), :mod:`.liveness`, :mod:`.retention`, :mod:`.rollups`;
- observing: :mod:`.observer` (hooks), :mod:`.metrics` (Prometheus).

The documented import path is :mod:`pystator.worker`. Operator operations on the fleet's tables
are :mod:`pystator.services` (they may use the fleet; the fleet never imports them).
"""
