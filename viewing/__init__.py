"""Viewing events: storage, ingestion and analytics."""
