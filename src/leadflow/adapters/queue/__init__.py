"""The job queue (Huey): on SQLite by default, on Redis when a URL is configured."""
