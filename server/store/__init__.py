"""Persistence: SQLAlchemy 2 async over SQLite (aiosqlite) or PostgreSQL (asyncpg), Alembic migrations."""
