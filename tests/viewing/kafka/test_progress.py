"""How far a group has read, against a real broker: the end of a partition is the watermark of
a fetch (Tansu 0.6's ListOffsets is not trusted), and unread() names what is not committed."""

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tests.kafka_broker import consumer_config
from viewing.kafka.progress import GroupProgress, Unread

pytestmark = [pytest.mark.kafka]


def test_unread_names_each_partition_not_committed_to_its_end(kafka):
    start, stop = kafka.topic("start"), kafka.topic("stop")
    for partition, count in ((0, 5), (2, 17)):
        for i in range(count):  # sent together: one record batch per partition
            kafka.produce(start, b"m%d" % i, partition=partition)
    kafka.produce(stop, b"x", partition=1)
    kafka.flush()
    group = kafka.group("progress")
    committer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        committer.commit({TopicPartition(start, 0): OffsetAndMetadata(5, "", -1),
                          TopicPartition(start, 2): OffsetAndMetadata(9, "", -1)})
        progress = GroupProgress(consumer_config(kafka, "progress"))
        try:
            assert len(progress.partitions()) == 9
            unread = progress.unread()
        finally:
            progress.close()
    finally:
        committer.close(autocommit=False)
    assert unread == [Unread(start, 2, 9, 17), Unread(stop, 1, None, 1)]
    assert str(unread[0]) == f"{start}[2] (committed up to offset 9 of 17)"
    assert str(unread[1]) == f"{stop}[1] (committed nothing of 1)"
