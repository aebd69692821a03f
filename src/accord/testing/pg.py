"""PostgreSQL for tests and benchmarks (see ``accord.testing.pg_admin``)."""

from accord.testing.pg_admin import *  # noqa: F403
from accord.testing.pg_admin import __all__ as __all__
