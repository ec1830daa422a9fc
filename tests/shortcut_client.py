"""A Django test client whose requests meet the server's WSGI application first: a single
event that the short path (viewing/event_shortcut.py) accepts is answered by it, everything
else by Django, as under gunicorn. The `client` fixture is one, so every test of single
events runs the way production does."""

from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.test import Client
from django.test.client import ClientHandler

from viewing.event_shortcut import event_shortcut, request_done


class _ShortcutHandler(ClientHandler):
    taken = 0  # answers given by the short path (tests check it is the one that answered)

    def __call__(self, environ):
        # As ClientHandler does: the test's transaction must outlive the request.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            answer = event_shortcut(environ)
            if answer is not None:
                request_done()  # the answer is "sent"
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        if answer is None:
            return super().__call__(environ)
        status, headers, payload = answer
        response = HttpResponse(payload, status=int(status.split()[0]))
        for name, value in headers:
            response[name] = value
        response.wsgi_request = WSGIRequest(environ)
        type(self).taken += 1
        return response


class ShortcutClient(Client):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handler = _ShortcutHandler(self.handler.enforce_csrf_checks)
