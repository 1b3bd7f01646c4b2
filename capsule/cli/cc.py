"""``capsule cc``: build a user's own program into a boot image.

    capsule cc prog.c [more.c ...] [--arch riscv64|aarch64] -o prog.img [--elf prog.elf]
               [--ram-size 32M] [--root-cnode-bits 12] [--mcs] [--checkpoint-object]
               [--cap-pages] [--server-backed-cnodes] [--arm-export-pmu-user]
               [-I DIR] [-D NAME[=VALUE]]

The sources are compiled and linked with capsule's libsel4 and runtime exactly as the
shipped programs are (:func:`userland.toolchain.build_program`: the same compiler, flags,
link script and runtime sources), then packaged with a kernel configuration into an
image (:func:`bootimage.build_image`), which ``capsule run`` runs. ``--mcs`` builds for
seL4's MCS configuration: libsel4 and the runtime are compiled with CONFIG_KERNEL_MCS
defined (the MCS system calls and stubs) and the image asks for the MCS kernel. ``--elf`` also keeps
the linked ELF, for gdb-multiarch and for the symbols a script reads.

Error contract (as ``capsule image``): a missing or unreadable source, a bad option or
configuration, a missing cross compiler: one line ``capsule: <message>`` on stderr, exit
status 2. When the compiler refuses the sources, its diagnostics are shown first, then
that one line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from bootimage import ImageError, build_image
from kernel.abi.arch import Arch
from kernel.config import ConfigError, KernelConfig
from userland.libsel4.generate import MCS_MACRO
from userland.toolchain import ARCHES, BuildError, CompileError, build_program

from .errors import CliError, Command
from .image import _size_option, _write, extension_options, pmu_option

__all__ = ["cc"]


@click.command(cls=Command)
@click.argument("sources", metavar="SOURCE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice(ARCHES), default="riscv64", show_default=True,
              help="Architecture to build for.")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              metavar="IMAGE", help="Boot image to write.")
@click.option("--elf", type=click.Path(path_type=Path), default=None, metavar="ELF",
              help="Also keep the linked ELF here (for gdb-multiarch, symbols).")
@click.option("--ram-size", callback=_size_option, help="Guest RAM, e.g. 32M (default 32M).")
@click.option("--root-cnode-bits", type=int, help="log2 of the root CNode's slots (default 12).")
@pmu_option
@click.option("--mcs", is_flag=True, default=None,
              help="seL4's MCS configuration: libsel4 built with CONFIG_KERNEL_MCS, and the "
                   "image's kernel the MCS one.")
@extension_options
@click.option("-I", "include_dirs", multiple=True, type=click.Path(path_type=Path),
              metavar="DIR", help="Also search DIR for headers (repeatable).")
@click.option("-D", "defines", multiple=True, metavar="NAME[=VALUE]",
              help="Define a preprocessor macro (repeatable).")
def cc(sources: tuple[Path, ...], arch: str, out: Path, elf: Path | None,
       ram_size: int | None, root_cnode_bits: int | None, mcs: bool | None,
       arm_export_pmu_user: bool,
       extensions: dict[str, bool],
       include_dirs: tuple[Path, ...], defines: tuple[str, ...]) -> None:
    """Compile SOURCE... (C or assembly) with capsule's libsel4 and runtime into a boot
    image: a root task that `capsule run` runs."""
    chosen = {"ram_size": ram_size, "root_cnode_bits": root_cnode_bits, "mcs": mcs,
              "arm_export_pmu_user": arm_export_pmu_user or None, **extensions}
    try:
        config = KernelConfig.from_dict({k: v for k, v in chosen.items() if v is not None})
    except ConfigError as err:
        raise CliError(f"bad kernel configuration: {err}") from None
    with tempfile.TemporaryDirectory(prefix="capsule-cc-") as tmp:
        target = elf if elf is not None else Path(tmp) / "program.elf"
        try:
            build_program(sources, arch, target, include_dirs=include_dirs,
                          defines=(*defines, MCS_MACRO) if mcs else defines)
        except CompileError as err:
            click.echo(err.diagnostics, err=True)
            raise CliError(f"cannot build {out}: compiling {', '.join(map(str, sources))} "
                           f"for {arch} failed (the compiler's messages are above)") from None
        except BuildError as err:
            raise CliError(str(err)) from None
        try:
            data = build_image(target.read_bytes(), config, Arch.from_name(arch))
        except ImageError as err:
            raise CliError(str(err)) from None
    _write(str(out), data)
    extra = f" (ELF {elf})" if elf is not None else ""
    click.echo(f"{out}: {arch} image, {len(data)} bytes{extra}")
