"""The ``capsule`` group's commands, each imported when it is looked up (capsule.cli)."""

from __future__ import annotations

import subprocess
import sys

import click

from capsule.cli import main
from userland import demo_image

COMMANDS = ["cc", "component", "cspace", "debug", "image", "resume", "run", "snapshot", "test"]


def test_every_command_is_listed_and_found_by_its_own_name() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == COMMANDS
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.name == name
    assert main.get_command(ctx, "frobnicate") is None


def test_a_run_loads_neither_the_other_commands_nor_the_gdb_stub() -> None:
    """`capsule run` imports what running needs: not the debugger (capstone), the
    compiler driver, the test runner, the GDB stub or pyelftools."""
    script = (
        "import sys\n"
        "from capsule.cli import main\n"
        "try:\n"
        f"    main(['run', {str(demo_image('riscv64'))!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    loaded = set(out.splitlines()[-1].split())
    for module in ("capstone", "capsule.cli.debugger", "capsule.cli.cc", "capsule.cli.suite",
                   "capsule.cli.component", "emulator.gdb_run", "emulator.gdb_server",
                   "elftools"):
        assert module not in loaded, module
    assert "capsule.cli.run" in loaded
