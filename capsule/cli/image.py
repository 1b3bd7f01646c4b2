"""``capsule image build|inspect|extract``: the boot-image format on the command line.

The lead CLI registers :data:`image` as a subcommand of ``capsule``; it also works on
its own (``image(prog_name="capsule image")``).

Error contract (``capsule.cli.errors``): every failure — an ``ImageError``, an
``OSError``, a bad option or argument — prints exactly one line, ``capsule: <message>``,
on stderr and exits with status 2; never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bootimage import ImageError, build_image, extract_elf
from bootimage.load import read_file
from kernel.abi.arch import Arch
from kernel.config import EXTENSION_FIELDS, ConfigError, KernelConfig

from .errors import CliError, Group

__all__ = ["extension_options", "image", "parse_size", "pmu_option"]

_F = TypeVar("_F", bound=Callable[..., Any])

EXTENSION_NAMES = {
    "checkpoint_object": "the checkpoint object",
    "cap_pages": "capability pages",
    "server_backed_cnodes": "server-backed CNodes",
}
"""What the README calls each extension (``kernel.config.EXTENSION_FIELDS``)."""


def extension_options(command: _F) -> _F:
    """Give ``command`` a flag per extension of ``KernelConfig`` (``--cap-pages`` for
    ``cap_pages``, ...), passed to it as one ``extensions`` argument: the fields the user
    turned on, each True (an extension left off is left out of the image)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["extensions"] = {field: True for field in EXTENSION_FIELDS
                                if kwargs.pop(field)}
        return command(*args, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for field in reversed(EXTENSION_FIELDS):
        decorated = click.option(
            "--" + field.replace("_", "-"), field, is_flag=True,
            help=f"Turn on {EXTENSION_NAMES[field]}: capsule's extension, not seL4 (the "
                 "README's Extensions beyond seL4).")(decorated)
    return decorated  # type: ignore[return-value]


def pmu_option(command: _F) -> _F:
    """Give ``command`` seL4's ``--arm-export-pmu-user`` flag (KernelArmExportPMUUser),
    passed as the ``arm_export_pmu_user`` argument."""
    return click.option(
        "--arm-export-pmu-user", "arm_export_pmu_user", is_flag=True,
        help="seL4's KernelArmExportPMUUser: AArch64's performance monitors usable at EL0, "
             "counting deterministically (instructions retired). RISC-V's counters are "
             "always readable.")(command)


_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes in ``text``: decimal or ``0x`` hex, optionally followed by K, M or G (x1024^n).

    Raises:
        ValueError: ``text`` is not such a size (the message quotes it).
    """
    s = text.strip().upper()
    scale = _SUFFIXES.get(s[-1:], 1)
    digits = s[:-1] if scale != 1 else s
    try:
        value = int(digits, 16) if digits.startswith("0X") else int(digits, 10)
    except ValueError:
        raise ValueError(
            f"bad size {text!r} (expected a number with an optional K, M or G suffix)"
        ) from None
    if value < 0:
        raise ValueError(f"bad size {text!r}: sizes are not negative")
    return value * scale


def _size_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """click callback: a size option's text as bytes (``parse_size``)."""
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx, param) from None


@click.group(cls=Group, no_args_is_help=True)
def image() -> None:
    """Build and inspect capsule boot images (kernel configuration + root task ELF)."""


@image.command()
@click.argument("elf", metavar="ELF")
@click.option("-o", "--output", "out", required=True, metavar="OUT", help="Image file to write.")
@click.option(
    "--arch",
    type=click.Choice([a.short for a in Arch]),
    help="Architecture the ELF must be for (default: the ELF's own e_machine).",
)
@click.option("--ram-size", callback=_size_option, help="Guest RAM, e.g. 32M (default 32M).")
@click.option("--root-cnode-bits", type=int, help="log2 of the root CNode's slots (default 12).")
@click.option("--tick-instructions", type=int, help="Instructions per timer tick.")
@click.option("--time-slice-ticks", type=int, help="Ticks per round-robin time slice.")
@click.option("--num-domains", type=int,
              help="Scheduling domains, 1..256 (default 1; seL4's CONFIG_NUM_DOMAINS).")
@pmu_option
@click.option("--mcs", is_flag=True, default=None,
              help="seL4's MCS configuration (CONFIG_KERNEL_MCS): scheduling contexts, "
                   "reply objects, the MCS system-call numbers.")
@extension_options
def build(
    elf: str,
    out: str,
    arch: str | None,
    ram_size: int | None,
    root_cnode_bits: int | None,
    tick_instructions: int | None,
    time_slice_ticks: int | None,
    num_domains: int | None,
    mcs: bool | None,
    arm_export_pmu_user: bool,
    extensions: dict[str, bool],
) -> None:
    """Package the root task ELF and a kernel configuration into an image OUT.

    Unset options take KernelConfig's defaults. The ELF is checked exactly as the loader
    checks it, so a bad ELF is refused here rather than at boot.
    """
    chosen = {
        "ram_size": ram_size,
        "root_cnode_bits": root_cnode_bits,
        "tick_instructions": tick_instructions,
        "time_slice_ticks": time_slice_ticks,
        "num_domains": num_domains,
        "mcs": mcs,
        "arm_export_pmu_user": arm_export_pmu_user or None,
        **extensions,
    }
    try:
        config = KernelConfig.from_dict({k: v for k, v in chosen.items() if v is not None})
    except ConfigError as err:
        raise CliError(f"bad kernel configuration: {err}") from None
    try:
        data = build_image(
            read_file(elf, "ELF"), config, Arch.from_name(arch) if arch else None
        )
        _write(out, data)
    except ImageError as err:
        raise CliError(str(err)) from None
    click.echo(f"{out}: {len(data)} bytes")


@image.command()
@click.argument("path", metavar="IMAGE")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def inspect(path: str, as_json: bool) -> None:
    """Check IMAGE as the loader does and describe its header, configuration and ELF."""
    from bootimage import inspect_image  # the inspector: not loaded by the other commands

    try:
        description = inspect_image(read_file(path, "image"))
    except ImageError as err:
        raise CliError(str(err)) from None
    if as_json:
        click.echo(json.dumps(description.to_dict(), indent=2))
    else:
        click.echo(description.to_text(), nl=False)


@image.command()
@click.argument("path", metavar="IMAGE")
@click.option("-o", "--output", "out", required=True, metavar="OUT", help="ELF file to write.")
def extract(path: str, out: str) -> None:
    """Write IMAGE's root task ELF to OUT, byte for byte as it was built (for gdb).

    Only the image's framing and checksum are checked, so the ELF of an image that
    does not boot still comes out.
    """
    try:
        elf = extract_elf(read_file(path, "image"))
    except ImageError as err:
        raise CliError(str(err)) from None
    _write(out, elf)
    click.echo(f"{out}: {len(elf)} bytes")


def _write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file, then rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CliError(f"cannot write {path!r}: {err.strerror or err}") from None
