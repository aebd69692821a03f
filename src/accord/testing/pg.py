"""PostgreSQL for tests and benchmarks (see ``accord.store.pg_admin``, which speaks SQL)."""

from accord.store.pg_admin import *  # noqa: F403
from accord.store.pg_admin import __all__ as __all__
