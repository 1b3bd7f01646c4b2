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

import click

from .cc import cc
from .component import component
from .cspace import cspace
from .debug import debug
from .errors import Group
from .image import image
from .resume import resume
from .run import run
from .snapshot import snapshot
from .suite import test_command

__all__ = ["main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="capsule")
def main() -> None:
    """capsule: seL4's user ABI on a Python kernel, running RV64 and AArch64 guests."""


main.add_command(run)
main.add_command(resume)
main.add_command(snapshot)
main.add_command(image)
main.add_command(test_command)
main.add_command(cspace)
main.add_command(debug)
main.add_command(cc)
main.add_command(component)
