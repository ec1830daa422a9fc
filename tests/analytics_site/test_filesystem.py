"""The data directory's file system (analytics_site/chdb_backend/filesystem.py) and the check
that warns about ext4 without a journal (viewing.W001). The /proc and /sys trees are built in
a temporary directory with the shapes Linux gives them (recorded from a machine with both kinds
of ext4); one test reads the real /proc."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings

from analytics_site.chdb_backend.filesystem import describe, filesystem_of, mount_of
from viewing.checks import NO_JOURNAL, data_dir_filesystem_check

# /proc/self/mountinfo lines as Linux writes them (recorded, the mount points renamed to paths
# no machine has, so that resolving symlinks on the real machine leaves them as they are): a
# root ext4 without a journal, a journaled ext4 on a loop device, tmpfs, and a mount point with
# a space in its name.
MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
25 24 0:23 / /fake-shm rw,relatime - tmpfs tmpfs rw,size=24684084k
85 27 7:0 / /fake-loop rw,relatime shared:40 - ext4 /dev/loop0 rw
86 27 7:0 / /fake-my\\040data rw,relatime - ext4 /dev/loop0 rw
"""


def fake_machine(tmp_path, *, journals=("loop0-8",)):
    proc, sys_root = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(MOUNTINFO)
    for device in ("vda", "loop0"):
        (proc / "fs" / "ext4" / device).mkdir(parents=True)
        target = sys_root / "devices" / "virtual" / "block" / device
        target.mkdir(parents=True)
    (proc / "fs" / "jbd2").mkdir(parents=True)
    for journal in journals:
        (proc / "fs" / "jbd2" / journal).mkdir()
    (sys_root / "dev" / "block").mkdir(parents=True)
    for number, device in (("254:0", "vda"), ("7:0", "loop0")):
        os.symlink(f"../../devices/virtual/block/{device}", sys_root / "dev" / "block" / number)
    return {"proc_root": str(proc), "sys_root": str(sys_root)}


def test_the_longest_mount_point_holding_the_path_wins():
    assert mount_of("/fake-root-data/var/clickhouse", MOUNTINFO) == ("/", "ext4", "254:0")
    assert mount_of("/fake-loop/var", MOUNTINFO) == ("/fake-loop", "ext4", "7:0")
    assert mount_of("/fake-loopx", MOUNTINFO) == ("/", "ext4", "254:0")  # a prefix of the name is not inside
    assert mount_of("/fake-shm", MOUNTINFO) == ("/fake-shm", "tmpfs", "0:23")
    assert mount_of("/fake-my data/x", MOUNTINFO) == ("/fake-my data", "ext4", "7:0")
    assert mount_of("/anything", "") is None


def test_ext4_with_and_without_a_journal_are_told_apart(tmp_path):
    machine = fake_machine(tmp_path)
    root = filesystem_of("/fake-root-data/var/clickhouse", **machine)
    assert (root.fstype, root.device, root.journal) == ("ext4", "vda", False)
    assert describe(root) == "ext4 without a journal (vda, mounted on /)"
    loop = filesystem_of("/fake-loop/var/clickhouse", **machine)
    assert (loop.device, loop.journal) == ("loop0", True)
    shm = filesystem_of("/fake-shm/data", **machine)
    assert (shm.fstype, shm.device, shm.journal) == ("tmpfs", None, None)


def test_without_the_kernels_lists_nothing_is_claimed(tmp_path):
    machine = fake_machine(tmp_path)
    os.rename(os.path.join(machine["proc_root"], "fs", "ext4"), tmp_path / "elsewhere")
    assert filesystem_of("/fake-root-data", **machine).journal is None
    assert filesystem_of("/fake-root-data", proc_root=str(tmp_path / "nothing"), sys_root=machine["sys_root"]) is None
    assert describe(None) == "an unknown file system"


@override_settings(CLICKHOUSE_EMBEDDED=True)
def test_the_check_warns_only_for_ext4_without_a_journal(tmp_path, monkeypatch):
    machine = fake_machine(tmp_path)
    import viewing.checks as checks

    monkeypatch.setattr(checks, "filesystem_of", lambda path: filesystem_of(path, **machine))
    with override_settings(CLICKHOUSE_DATA_DIR="/fake-root-data/var/clickhouse"):
        (warning,) = data_dir_filesystem_check(None)
        assert warning.id == NO_JOURNAL and "ext4 without a journal (vda" in warning.msg
        assert "CLICKHOUSE_DATA_DIR" in warning.hint
    for quiet in ("/fake-loop/var/clickhouse", "/fake-shm/clickhouse"):
        with override_settings(CLICKHOUSE_DATA_DIR=quiet):
            assert data_dir_filesystem_check(None) == []
    with override_settings(CLICKHOUSE_EMBEDDED=False, CLICKHOUSE_DATA_DIR="/fake-root-data/var/clickhouse"):
        assert data_dir_filesystem_check(None) == []  # a server's disks are not ours to judge


def test_this_machine_reads_as_its_proc_says():
    """The real /proc: the data directory's mount and type agree with /proc/mounts."""
    fs = filesystem_of(settings.CLICKHOUSE_DATA_DIR)
    if fs is None:
        pytest.skip("no /proc/self/mountinfo here")
    with open("/proc/mounts") as f:
        points = {line.split()[1]: line.split()[2] for line in f}
    assert points.get(fs.mount_point) == fs.fstype


@pytest.mark.slow
def test_manage_py_check_names_the_file_system_and_can_be_silenced(tmp_path):
    """On this machine's own file systems: the warning appears exactly when filesystem_of says
    ext4 without a journal, and SILENCED_SYSTEM_CHECKS takes it away."""
    data_dir = str(tmp_path / "clickhouse")
    fs = filesystem_of(data_dir)
    env = {**{k: v for k, v in os.environ.items() if k != "SILENCED_SYSTEM_CHECKS"},
           "DJANGO_DEBUG": "true", "ANALYTICS_VAR_DIR": str(tmp_path / "var"), "CLICKHOUSE_DATA_DIR": data_dir}
    env.pop("CLICKHOUSE_HOST", None)

    def check(**extra):
        return subprocess.run([sys.executable, "manage.py", "check"], env={**env, **extra}, cwd=settings.BASE_DIR,
                              capture_output=True, text=True, timeout=120)

    done = check()
    assert done.returncode == 0, done.stderr
    expected = fs is not None and fs.fstype == "ext4" and fs.journal is False
    assert (NO_JOURNAL in done.stderr) == expected, done.stderr
    silenced = check(SILENCED_SYSTEM_CHECKS=NO_JOURNAL)
    assert silenced.returncode == 0 and NO_JOURNAL not in silenced.stderr
    assert "System check identified no issues" in silenced.stdout
