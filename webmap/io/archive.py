"""Open zip archives (.zip, .kmz) ourselves, with limits, instead of handing GDAL a /vsizip/ path.

Every archive is treated as hostile: member names with '..' or absolute paths, links, too many members,
too many bytes once unpacked, or a suspicious compression ratio (zip bombs) are refused before anything
is written. Members are extracted into a private temporary folder that the caller removes.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import PurePosixPath

from webmap.errors import BadInput, UnsafeInput

MAX_MEMBERS = 2_000
MAX_TOTAL_BYTES = 2 * 1024**3  # 2 GiB unpacked
MAX_RATIO = 200  # unpacked / packed, per member (text DBFs compress ~10-50x)


def _check_member_name(name: str) -> str:
    """Return a safe relative path for a member, or refuse the archive."""
    if "\\" in name:
        name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeInput(f"archive member {name!r} has an absolute path; refused")
    if any(part == ".." for part in path.parts):
        raise UnsafeInput(f"archive member {name!r} climbs out of the archive ('..'); refused")
    return str(path)


def extract_archive(archive_path: str, dest_dir: str, *, max_members=MAX_MEMBERS,
                    max_total_bytes=MAX_TOTAL_BYTES, max_ratio=MAX_RATIO) -> list[str]:
    """Check every member of a zip archive, then extract it into ``dest_dir``.

    Returns the relative paths of the extracted files. Raises ``UnsafeInput`` (nothing extracted) when a
    limit is broken, ``BadInput`` when the file is not a zip archive.
    """
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(f"{os.path.basename(archive_path)} is not a readable zip archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise UnsafeInput(f"archive has {len(infos)} members; at most {max_members} are accepted")
        total = 0
        plan = []
        for info in infos:
            safe = _check_member_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeInput(f"archive member {info.filename!r} is a symbolic link; refused")
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise BadInput(f"archive member {info.filename!r} is encrypted; unpack it first")
            total += info.file_size
            if total > max_total_bytes:
                raise UnsafeInput(f"archive unpacks to more than {max_total_bytes // 1024**2} MiB; refused")
            if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
                raise UnsafeInput(
                    f"archive member {info.filename!r} has a compression ratio over {max_ratio}:1 (zip bomb?); refused"
                )
            plan.append((info, safe))
        extracted = []
        dest_real = os.path.realpath(dest_dir)
        for info, safe in plan:
            target = os.path.realpath(os.path.join(dest_real, safe))
            if not target.startswith(dest_real + os.sep):
                raise UnsafeInput(f"archive member {info.filename!r} escapes the extraction folder; refused")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            written = 0
            try:
                with archive.open(info) as src, open(target, "wb") as dst:
                    # the header's sizes can lie: count what really comes out
                    while chunk := src.read(1024 * 1024):
                        written += len(chunk)
                        if written > info.file_size:
                            raise UnsafeInput(f"archive member {info.filename!r} is larger than its header says; refused")
                        dst.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                # damaged data, a wrong CRC, an unsupported compression method: the user's file, not our bug
                raise BadInput(f"archive member {info.filename!r} cannot be unpacked ({exc}); refused") from None
            extracted.append(safe)
        return extracted
