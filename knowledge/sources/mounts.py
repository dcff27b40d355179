"""Which file system holds a folder, read from the kernel's mount table.

File modes decide nothing on an SMB/CIFS mount: the client makes them up from mount options
(`file_mode=0755`) and the share's Windows ACLs are invisible in them, so the permission
policy warns when they decide there."""

from __future__ import annotations

from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
SMB_TYPES = frozenset({"cifs", "smb3", "smbfs", "smb2"})


def filesystem_type(folder: Path, mountinfo: str | None = None) -> str | None:
    """The type (`ext4`, `cifs`, ...) of the file system holding `folder`: the mount with the
    longest mount point above it in `mountinfo` (the text of /proc/self/mountinfo; read when
    None). None when the table cannot be read or says nothing."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = Path(folder).expanduser().resolve()
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        mount_fields, separator, filesystem_fields = line.partition(" - ")
        fields = mount_fields.split()
        if not separator or len(fields) < 5 or not filesystem_fields.split():
            continue
        mount_point = Path(_unescape(fields[4]))
        if target.is_relative_to(mount_point) and (best is None or len(mount_point.parts) >= best[0]):
            best = (len(mount_point.parts), filesystem_fields.split()[0])
    return best[1] if best else None


def is_smb(folder: Path, mountinfo: str | None = None) -> bool:
    """Whether `folder` lies on an SMB/CIFS mount."""
    return filesystem_type(folder, mountinfo) in SMB_TYPES


def _unescape(text: str) -> str:
    """Mount points escape space, tab, newline and backslash as octal (`\\040`)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text
