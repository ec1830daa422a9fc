"""`consume_stream`: runs the Kafka consumer loop (viewing.kafka.loop) in this process."""

import signal

from django.core.management.base import BaseCommand, CommandError

from viewing.kafka.config import ConsumerConfig, consumer_gc_tune
from viewing.kafka.errors import ConsumerError
from viewing.kafka.loop import StreamConsumer


class Command(BaseCommand):
    help = (
        "Consumes the viewing-event topics (KAFKA_TOPICS) into ClickHouse: batched inserts, "
        "offsets committed after each insert, invalid messages to KAFKA_DLQ_TOPIC. "
        "SIGTERM/SIGINT flush, commit and exit 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("--exit-on-idle", type=float, metavar="SECONDS",
                            help="stop after this long with nothing new, once the group has read every partition "
                                 "of its topics to the end (exit 0); partitions it cannot get within twice "
                                 "the session timeout: exit 1 naming them")
        parser.add_argument("--max-messages", type=int, metavar="N", help="stop after N messages")
        parser.add_argument("--batch-size", type=int, metavar="N", help="rows per insert (KAFKA_BATCH_SIZE)")
        parser.add_argument("--flush-interval", type=float, metavar="SECONDS",
                            help="insert a partial batch after this long (KAFKA_FLUSH_INTERVAL)")

    def handle(self, *args, exit_on_idle, max_messages, batch_size, flush_interval, **options):
        for name, value in (("--exit-on-idle", exit_on_idle), ("--flush-interval", flush_interval)):
            if value is not None and value <= 0:
                raise CommandError(f"{name} must be a positive number of seconds.")
        for name, value in (("--max-messages", max_messages), ("--batch-size", batch_size)):
            if value is not None and value < 1:
                raise CommandError(f"{name} must be at least 1.")
        consumer_gc_tune()  # this process only consumes: fewer garbage-collector passes (config.py)
        try:
            loop = StreamConsumer(ConsumerConfig.from_settings(batch_size=batch_size, flush_interval=flush_interval))
            loop.check()
        except ConsumerError as e:  # a busy embedded data directory is one, with its message
            raise CommandError(str(e)) from e

        def stop(signum, frame):
            # Only a flag: the loop flushes, commits and closes on its own thread. Calling
            # close() here could hang inside kafka-python.
            loop.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            stats = loop.run(exit_on_idle=exit_on_idle, max_messages=max_messages)
        except ConsumerError as e:
            raise CommandError(str(e)) from e
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"consumed {stats['consumed']}, stored {stats['stored']}, duplicates {stats['duplicates']}, "
                f"dead-lettered {stats['dead_lettered']}"
            )
