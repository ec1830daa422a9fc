"""The file system under the embedded engine's data directory, and whether it costs inserts.

Every insert makes a new part in the raw table and in each table a view feeds (about a dozen
files each), and merges delete parts all the time. On ext4 *without a journal* the kernel
will not reuse an inode freed in the last few seconds, and to find a free one it reads the
inode table looking at every recently deleted inode (`recently_deleted()` in ext4's
ialloc.c; a journaled ext4 skips that check). Measured here (perf, 200-event inserts in a
loop): 50-60 % of an insert's CPU was that scan; on a journaled ext4 on the same disk the
kernel's share of an insert fell from 26-64 ms to 13 ms. So `manage.py check` (and migrate,
consume_stream) warn when the data directory is on such a file system.

Read from Linux's /proc and /sys only; anywhere else (or if they say nothing) the answer is
"unknown" and nothing is warned.
"""

import os
import re
from dataclasses import dataclass

MOUNTINFO = "self/mountinfo"
JOURNALS = "fs/jbd2"  # one entry per mounted journal: "<device>-<journal inode>"
EXT4 = "fs/ext4"  # one entry per mounted ext4 file system: "<device>"


@dataclass(frozen=True)
class FileSystem:
    mount_point: str
    fstype: str
    device: str | None  # the kernel's name of the block device (vda, loop0, dm-0), if any
    journal: bool | None  # ext4: whether it has a journal; None when unknown or not ext4


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path: str, mountinfo: str) -> tuple[str, str, str] | None:
    """(mount point, file system type, major:minor) of the mount holding `path` (absolute,
    symlinks resolved), from the text of /proc/self/mountinfo; None if no line covers it."""
    best = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        mount_point, device_number, fstype = _unescape(fields[4]), fields[2], fields[separator + 1]
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        # The longest mount point wins; of two on the same point, the later one (it hides the other).
        if inside and (best is None or len(mount_point) >= len(best[0])):
            best = (mount_point, fstype, device_number)
    return best


def device_name(device_number: str, sys_root: str = "/sys") -> str | None:
    """The kernel's name of a block device from its major:minor (/sys/dev/block/M:N links to
    .../block/<name>); None for file systems without one (tmpfs, overlay)."""
    link = os.path.join(sys_root, "dev", "block", device_number)
    if not os.path.exists(link):
        return None
    return os.path.basename(os.path.realpath(link))


def has_journal(device: str, *, journals: list[str] | None, ext4_devices: list[str] | None) -> bool | None:
    """Whether the mounted ext4 `device` has a journal: jbd2 lists every mounted journal by its
    device's name. None when /proc does not say (no ext4 entry for the device)."""
    if ext4_devices is None or device not in ext4_devices:
        return None
    return any(entry.startswith(f"{device}-") for entry in journals or [])


def _listdir(path: str) -> list[str] | None:
    try:
        return os.listdir(path)
    except OSError:
        return None


def filesystem_of(path: str, *, proc_root: str = "/proc", sys_root: str = "/sys") -> FileSystem | None:
    """The file system `path` is (or, not created yet, would be) on; None if /proc cannot say.
    (`proc_root`, `sys_root`: other trees of the same shape, for tests.)"""
    # Symlinks resolved as far as the path exists; a directory not created yet is on the
    # mount whose point is the longest prefix of the path, existing or not.
    path = os.path.realpath(path)
    try:
        with open(os.path.join(proc_root, MOUNTINFO)) as f:
            found = mount_of(path, f.read())
    except OSError:
        return None
    if found is None:
        return None
    mount_point, fstype, device_number = found
    device = device_name(device_number, sys_root)
    journal = None
    if fstype == "ext4" and device is not None:
        journal = has_journal(device, journals=_listdir(os.path.join(proc_root, JOURNALS)),
                              ext4_devices=_listdir(os.path.join(proc_root, EXT4)))
    return FileSystem(mount_point, fstype, device, journal)


def describe(fs: FileSystem | None) -> str:
    """One phrase for logs and benchmark reports: "ext4 without a journal (vda, mounted on /)"."""
    if fs is None:
        return "an unknown file system"
    kind = fs.fstype
    if fs.journal is not None:
        kind += " with a journal" if fs.journal else " without a journal"
    return f"{kind} ({fs.device or 'no device'}, mounted on {fs.mount_point})"
