"""``capsule cc --cap-pages`` (capsule's capability-page extension, not seL4): a
program on capability pages built with and without it. How every extension's option
reaches the image: tests/cli/test_cli_extensions.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli_cc import command_path, shell

PROGRAM = r"""
#include <sel4/sel4.h>
#include <sel4/gen/capsule_cap_page.h>
#include <stdio.h>

int main(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_CPtr ut = 0, page = bi->empty.start, out = page + 1;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits >= 16) {
            ut = s;
        }
    }
    seL4_Error e = seL4_Untyped_Retype(ut, capsule_CapPageObject, 0,
                                       seL4_CapInitThreadCNode, 0, 0, page, 1);
    if (e == seL4_NoError) {
        e = capsule_CapPage_Map(page, seL4_CapInitThreadVSpace, 0x61000000ul, 0);
    }
    if (e == seL4_NoError) {
        e = capsule_VSpace_CapStore(seL4_CapInitThreadVSpace, 0x61000020ul,
                                    seL4_CapInitThreadCNode, seL4_CapInitThreadTCB, 64);
    }
    if (e == seL4_NoError) {
        e = capsule_VSpace_CapLoad(seL4_CapInitThreadVSpace, 0x61000020ul,
                                   seL4_CapInitThreadCNode, out, 64);
    }
    printf("result %d tag %u\n", (int)e, (unsigned)seL4_DebugCapIdentify(out));
    return e;
}
"""


def test_cc_builds_a_cap_page_program_with_and_without_the_extension(tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    env = command_path(tmp_path)
    (tmp_path / "prog.c").write_text(PROGRAM)
    built = shell("capsule cc prog.c --cap-pages -o on.img", tmp_path, env)
    assert built.returncode == 0, built.stderr
    run = shell("capsule run on.img", tmp_path, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "result 0 tag 12" in run.stdout  # a thread cap, loaded back from the page
    built = shell("capsule cc prog.c -o off.img", tmp_path, env)
    assert built.returncode == 0, built.stderr
    run = shell("capsule run off.img", tmp_path, env)
    assert "result 1 tag 0" in run.stdout  # seL4_InvalidArgument from Untyped_Retype
