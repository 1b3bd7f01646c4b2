"""The ``capsule`` command line: the group and its commands, one module each.

    capsule run      capsule.cli.run       capsule debug    capsule.cli.debug
    capsule test     capsule.cli.suite     capsule cspace   capsule.cli.cspace
    capsule image    capsule.cli.image     capsule cc       capsule.cli.cc
    capsule resume   capsule.cli.resume    capsule component  capsule.cli.component
    capsule snapshot capsule.cli.snapshot

The commands are users of the Python API (:mod:`capsule`): they load, run and inspect
through :class:`capsule.Machine`, and reach below it (the session, the kernel) only for
what a command adds on top (the trace and kernel-log sinks, the GDB stub). Nothing in
``capsule`` outside this package imports it (an import-linter contract).

Every failure a user can cause (a bad image, a bad argument, a usage error) ends with
one line on stderr, ``capsule: <what is wrong>``, and status 2; never a traceback nor a
usage block (``capsule.cli.errors``). Exit statuses: ``emulator.exitstatus``.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from .errors import Group

__all__ = ["main"]


# Each command's module is imported when that command is looked up (to run it, or to list
# it in --help), so that `capsule run` does not load the debugger and capstone, the
# compiler driver, the test runner or the component tools.


def _run() -> click.Command:
    from .run import run

    return run


def _resume() -> click.Command:
    from .resume import resume

    return resume


def _snapshot() -> click.Command:
    from .snapshot import snapshot

    return snapshot


def _image() -> click.Command:
    from .image import image

    return image


def _test() -> click.Command:
    from .suite import test_command

    return test_command


def _cspace() -> click.Command:
    from .cspace import cspace

    return cspace


def _debug() -> click.Command:
    from .debug import debug

    return debug


def _cc() -> click.Command:
    from .cc import cc

    return cc


def _component() -> click.Command:
    from .component import component

    return component


_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "run": _run,
    "resume": _resume,
    "snapshot": _snapshot,
    "image": _image,
    "test": _test,
    "cspace": _cspace,
    "debug": _debug,
    "cc": _cc,
    "component": _component,
}
"""Command name -> the function that imports it (its module's command object)."""


class _LazyGroup(Group):
    """The ``capsule`` group, whose commands are imported from :data:`_COMMANDS` when
    first looked up; to click it looks like a group with all of them added."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        load = _COMMANDS.get(cmd_name)
        if load is not None and cmd_name not in self.commands:
            self.add_command(load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands.keys() | _COMMANDS.keys())

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in _COMMANDS:
            # An unknown name: click's "did you mean" draws on the commands it has.
            for name in _COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="capsule")
def main() -> None:
    """capsule: seL4's user ABI on a Python kernel, running RV64 and AArch64 guests."""

