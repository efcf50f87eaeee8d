"""App mode fails at start, in one line that names the fix, rather than at the first member."""

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor


def check_database() -> None:
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except ImproperlyConfigured as e:  # the driver CHAT_DATABASE_URL needs is not installed
        raise SystemExit(f"CHAT_DATABASE_URL needs a driver: {e}; run: pip install 'psycopg[binary]'")
    except DatabaseError as e:
        raise SystemExit(f"cannot use the database CHAT_DATABASE_URL names: {str(e).strip()}")
    finally:
        connection.close()
    if pending:
        raise SystemExit(f"the database is not migrated ({len(pending)} migrations pending): "
                         "run: python manage.py migrate")
