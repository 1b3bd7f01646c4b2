"""``capsule snapshot inspect FILE``: what a snapshot file holds, without taking it up.

For people who keep snapshots (a CI cache of booted systems, a bug report): which
capsule made it and whether this one can take it up, the image and architecture, the
point of the run (instructions, kernel entries, ticks) and how much RAM it stores. The
framing and the digest are checked (:func:`emulator.snapshot.describe_snapshot`); the
payload is not unpacked. A file that is not an intact snapshot is one line and status
2; a snapshot of another capsule version is described, and says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bootimage import ImageError
from bootimage.load import read_file
from emulator.snapshot import (
    FORMAT_VERSION,
    SnapshotError,
    SnapshotInfo,
    capsule_version,
    describe_snapshot,
)

from .errors import CliError, Group

__all__ = ["snapshot"]


@click.group(cls=Group, no_args_is_help=True)
def snapshot() -> None:
    """Snapshot files (capsule run --snapshot-at N --save FILE; capsule resume FILE)."""


@snapshot.command()
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="As one JSON object.")
def inspect(path: Path, as_json: bool) -> None:
    """Describe the snapshot in FILE and say whether this capsule can take it up."""
    try:
        data = read_file(path, "snapshot")
        info = describe_snapshot(data)
    except ImageError as error:
        raise CliError(str(error)) from None
    except SnapshotError as error:
        raise CliError(f"{path}: {error}") from None
    ours = info.capsule == capsule_version()
    if as_json:
        fields = {"file": str(path), "bytes": len(data), "format": FORMAT_VERSION,
                  **_fields(info), "this_capsule": capsule_version(), "takes_up": ours}
        click.echo(json.dumps(fields, indent=2))
        return
    count = "unknown" if info.instructions is None else str(info.instructions)
    verdict = ("this capsule takes it up" if ours
               else f"this is capsule {capsule_version()}: it cannot take it up")
    click.echo(f"snapshot {path}: {len(data)} bytes, format {FORMAT_VERSION}, digest intact")
    click.echo(f"made by capsule {info.capsule} ({verdict})")
    click.echo(f"image {info.image or '(unnamed)'}: {info.arch}, "
               f"RAM {info.ram_size:#x} bytes")
    click.echo(f"at instruction {count}, kernel entry {info.kernel_entries}, tick {info.ticks}")
    click.echo(f"RAM stored: {info.pages} pages of 4 KiB (the others are zero)")


def _fields(info: SnapshotInfo) -> dict[str, object]:
    return {"capsule": info.capsule, "image": info.image, "arch": info.arch,
            "ram_size": info.ram_size, "instructions": info.instructions,
            "kernel_entries": info.kernel_entries, "ticks": info.ticks,
            "pages": info.pages}
