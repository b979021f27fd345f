"""The reference restructure of synapscale_db: Alembic migrations, SQLAlchemy 2 models and the API."""
