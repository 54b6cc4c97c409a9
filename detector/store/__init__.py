"""The database: SQLAlchemy models, engine setup and Alembic migrations."""
