"""Viewing analytics service: Django project package."""
