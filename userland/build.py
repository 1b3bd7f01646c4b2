"""Cross-build the guest programs for both architectures.

    python -m userland.build [--out DIR] [--no-images] [--no-ship] [--reproducible]

Every ``apps/*.c``, ``tests/*.c`` and ``bench/*.c`` is one program, linked with the runtime and
libsel4 into ``<out>/<arch>/<name>.elf`` (default ``userland/build``). If the module
``bootimage`` provides ``build_image(elf, config)``, each ELF is also turned into a boot
image ``<out>/<arch>/<name>.img`` (configured by :func:`image_config`), and the demo
programs are written to ``userland/images/<name>-<arch>.img``, the images that ship with
the package.

The compiler, its flags, the link scripts and the runtime sources are
:mod:`userland.toolchain`'s, which ``capsule cc`` uses for a user's own programs too; the
compiler runs in this directory on relative paths. Two kinds of build:

- A local build (the default) names the sources by their absolute path on this machine
  in the debug info, so that ``gdb-multiarch prog.elf`` lists source lines from any
  directory (``capsule image extract`` gives the ELF back from an image). Such ELFs hold
  a machine path and are never committed.
- A reproducible build (``reproducible=True``: the shipped images, which are committed)
  maps every machine path away (the sources become ``userland/...``), so the same
  sources give byte-identical ELFs anywhere; gdb then finds the sources when run from
  the top of the repository, or with ``directory <repository>/userland``.

:func:`check_elf` verifies each ELF's layout against what the kernel and the runtime
expect before it is accepted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from . import IMAGES_DIR
from .toolchain import (
    ARCHES,
    CFLAGS,
    LDFLAGS,
    PROCESS_SOURCE,
    TARGETS,
    USERLAND,
    BuildError,
    CompileError,
    Target,
    check_elf,
    link_script,
    run_compiler,
    runtime_sources,
    uses_process_library,
)

if TYPE_CHECKING:
    from kernel.config import KernelConfig

__all__ = [
    "ARCHES",
    "BuildError",
    "DEFAULT_OUT",
    "SHIPPED",
    "Target",
    "TARGETS",
    "build_all",
    "check_elf",
    "image_config",
    "main",
    "programs",
]

DEFAULT_OUT = USERLAND / "build"
SHIPPED = ("hello", "bootinfo")
"""Programs whose images ship with the package (userland/images/<name>-<arch>.img)."""
PROGRAM_DIRS = ("apps", "tests", "bench")
IMAGE_CONFIGS: dict[str, dict[str, int | bool]] = {
    # A naturally aligned 1 GiB RAM untyped for its 1 GiB frame: with 2 GiB of RAM (at
    # 2 GiB on RISC-V, 1 GiB on AArch64), the upper gigabyte; the lower one starts with
    # the root task's image and boot objects.
    "vspace_huge": {"ram_size": 2 << 30},
    "domains": {"num_domains": 3},
    # capsule's checkpoint object extension (not seL4), which the checkpointer uses.
    "checkpointer": {"checkpoint_object": True},
    # capsule's capability-page extension (not seL4).
    "cappage": {"cap_pages": True},
    # capsule's server-backed CNodes extension (not seL4).
    "vtrav": {"server_backed_cnodes": True},
    # seL4's KernelArmExportPMUUser (off, the program checks that the PMU traps).
    "counters": {"arm_export_pmu_user": True},
}
"""Per program, the kernel configuration fields its image sets away from the defaults."""


# ---------------------------------------------------------------------------- sources


def programs() -> dict[str, str]:
    """Program name -> source path relative to ``userland/``, for every guest program."""
    found: dict[str, str] = {}
    for sub in PROGRAM_DIRS:
        for src in sorted((USERLAND / sub).glob("*.c")):
            if src.stem in found:
                raise BuildError(f"two programs are called {src.stem!r}: "
                                 f"{found[src.stem]} and {sub}/{src.name}")
            found[src.stem] = f"{sub}/{src.name}"
    return found


def image_config(name: str) -> KernelConfig:
    """The kernel configuration of program ``name``'s boot image: the defaults, changed
    by its entry in :data:`IMAGE_CONFIGS` if it has one."""
    from kernel.config import KernelConfig

    return KernelConfig.from_dict(IMAGE_CONFIGS.get(name, {}))


def _prefix_maps(reproducible: bool) -> list[str]:
    """Map the machine paths that could reach the debug info to fixed names: the
    compiler's own (its headers), and in a reproducible build ``userland/`` as well."""
    import ziglang  # the dev extra; imported here so that `import userland.build` works without

    pairs = {Path(ziglang.__file__).parent: "zig"}
    if reproducible:
        pairs[USERLAND] = "userland"
    maps = []
    for path, name in pairs.items():
        for form in {str(path), os.path.realpath(path)}:
            maps.append(f"-ffile-prefix-map={form}={name}")
    return maps


def _cc(args: Sequence[str]) -> None:
    try:
        run_compiler(args, USERLAND)
    except CompileError as error:
        raise BuildError(f"{error}\n{error.diagnostics}") from None


def _object_name(source: str) -> str:
    return source.replace("/", "_").rsplit(".", 1)[0] + ".o"


# ---------------------------------------------------------------------------- build


def _load_image_builder() -> tuple[object | None, str]:
    """``(build_image, "")`` if the bootimage module provides it, else ``(None, why)``."""
    try:
        from bootimage import build_image  # type: ignore[attr-defined, unused-ignore]
    except ImportError as exc:
        return None, f"bootimage.build_image is not available ({exc})"
    return build_image, ""


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _build_arch(pool: ThreadPoolExecutor, target: Target, arch_dir: Path,
                progs: dict[str, str], reproducible: bool) -> dict[str, Path]:
    """Compile the runtime and every program for one target, then link and check each."""
    obj_dir = arch_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    cflags = [*target.flags, *CFLAGS, *_prefix_maps(reproducible)]
    runtime = runtime_sources(target.arch)
    sources = runtime + [PROCESS_SOURCE] + list(progs.values())

    def compile_one(src: str) -> Path:
        obj = obj_dir / _object_name(src)
        _cc([*cflags, "-c", src, "-o", str(obj)])
        return obj

    objects = dict(zip(sources, pool.map(compile_one, sources), strict=True))
    runtime_objs = [str(objects[s]) for s in runtime]
    embeds = {name: _embedded_programs(progs[name], progs) for name in progs}

    def link_one(name: str, extra: Sequence[str] = ()) -> Path:
        elf = arch_dir / f"{name}.elf"
        if uses_process_library((USERLAND / progs[name]).read_text()):
            extra = [*extra, str(objects[PROCESS_SOURCE])]
        _cc([*target.flags, *LDFLAGS, "-T", link_script(target.arch),
             str(objects[progs[name]]), *extra, *runtime_objs, "-o", str(elf)])
        check_elf(elf, target, reproducible)
        return elf

    def link_embedder(name: str) -> Path:
        src = obj_dir / f"{name}_embedded.c"
        _write_if_changed(src, _embed_source(
            {child: (arch_dir / f"{child}.elf").read_bytes() for child in embeds[name]}
        ).encode())
        obj = obj_dir / f"{name}_embedded.o"
        _cc([*cflags, f"-ffile-prefix-map={obj_dir}=build", "-c", str(src), "-o", str(obj)])
        return link_one(name, [str(obj)])

    # Programs that embed others link after them (one level of embedding).
    plain = [n for n in progs if not embeds[n]]
    built = dict(zip(plain, pool.map(link_one, plain), strict=True))
    embedders = [n for n in progs if embeds[n]]
    built.update(zip(embedders, pool.map(link_embedder, embedders), strict=True))
    return {name: built[name] for name in progs}


_EMBED = re.compile(r"^CAPSULE_EMBED_ELF\((\w+)\)", re.M)


def _embedded_programs(source: str, progs: dict[str, str]) -> list[str]:
    """The programs whose ELF files ``source`` embeds: one ``CAPSULE_EMBED_ELF(name)``
    line each (runtime/include/process.h); each must be a program that embeds none."""
    names = _EMBED.findall((USERLAND / source).read_text())
    for name in names:
        if name not in progs or _EMBED.search((USERLAND / progs[name]).read_text()):
            raise BuildError(f"{source}: cannot embed {name!r}")
    return names


def _embed_source(elves: dict[str, bytes]) -> str:
    """C source defining ``capsule_elf_<name>`` / ``capsule_elf_<name>_size`` per ELF."""
    out = ["/* Generated by userland/build.py: embedded program ELFs. */"]
    for name, data in elves.items():
        body = ",".join(str(b) for b in data)
        out.append(f"const unsigned char capsule_elf_{name}[] __attribute__((aligned(8))) = "
                   f"{{{body}}};")
        out.append(f"const unsigned long capsule_elf_{name}_size = {len(data)};")
    return "\n".join(out) + "\n"


def build_all(out_dir: Path = DEFAULT_OUT, *, images: bool = True, ship: bool = False,
              jobs: int | None = None, quiet: bool = True, reproducible: bool = False,
              only: Sequence[str] | None = None) -> dict[str, dict[str, Path]]:
    """Build every program (or those named in ``only``) for every architecture.

    Returns ``{arch: {program: elf_path}}``; ELFs are ``out_dir/<arch>/<program>.elf``,
    a local build unless ``reproducible`` (module docstring). With ``images``, also
    writes ``out_dir/<arch>/<program>.img`` when the bootimage module is available
    (skipped with a message otherwise). With ``ship``, also writes the shipped demo
    images into ``userland/images/``, from a reproducible build of the shipped programs
    in ``out_dir/reproducible``.

    Raises:
        BuildError: a compile, link or layout check failed, or ``only`` names no program.
    """
    out_dir = Path(out_dir).resolve()
    progs = programs()
    if only is not None:
        unknown = sorted(set(only) - set(progs))
        if unknown:
            raise BuildError(f"no such programs: {', '.join(unknown)}")
        progs = {name: progs[name] for name in only}
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        result = {
            arch: _build_arch(pool, target, out_dir / arch, progs, reproducible)
            for arch, target in TARGETS.items()
        }
    if not quiet:
        for elves in result.values():
            for elf in elves.values():
                print(f"built {elf}")
    if images:
        _write_images(result, out_dir, quiet=quiet)
    if ship:
        shipped = result if reproducible and only is None else build_all(
            out_dir / "reproducible", images=False, jobs=jobs, reproducible=True, only=SHIPPED)
        _write_images(shipped, None, quiet=quiet)
    return result


def _write_images(elves: dict[str, dict[str, Path]], out_dir: Path | None, *,
                  quiet: bool) -> None:
    """Boot images of ``elves``: ``out_dir/<arch>/<name>.img``, or with ``out_dir`` None
    the shipped images of the programs in :data:`SHIPPED`."""
    build_image, why = _load_image_builder()
    if build_image is None:
        print(f"skipping boot images: {why}", file=sys.stderr)
        return
    for arch, progs in elves.items():
        for name, elf in progs.items():
            if out_dir is None and name not in SHIPPED:
                continue
            try:
                image = build_image(elf.read_bytes(), image_config(name))  # type: ignore[operator]
            except Exception as exc:  # another module's failure, reported with context
                raise BuildError(f"bootimage.build_image failed for {elf}: {exc}") from exc
            path = (IMAGES_DIR / f"{name}-{arch}.img" if out_dir is None
                    else out_dir / arch / f"{name}.img")
            _write_if_changed(path, image)
            if not quiet:
                print(f"image {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m userland.build",
                                     description="Cross-build the capsule guest programs.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory (default: userland/build)")
    parser.add_argument("--no-images", action="store_true", help="build ELFs only")
    parser.add_argument("--no-ship", action="store_true",
                        help="do not update the shipped images in userland/images/")
    parser.add_argument("--reproducible", action="store_true",
                        help="map every machine path away (as the shipped images are built)")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="parallel compiler runs")
    args = parser.parse_args(argv)
    try:
        build_all(args.out, images=not args.no_images, ship=not args.no_ship, jobs=args.jobs,
                  quiet=False, reproducible=args.reproducible)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
