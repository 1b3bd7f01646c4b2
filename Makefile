# capsule: the two promises of the README, plus the developer targets.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

# pip refuses to install into Debian's (and others') system Python (PEP 668): say what to do.
PIP_HINT := { echo "make: pip could not install into $(PYTHON)'s environment; on Debian and" \
	"Ubuntu, make a virtual environment first: python3 -m venv .venv && . .venv/bin/activate" >&2; \
	exit 1; }

.PHONY: all install dev demo test fuzz compiled test-compiled bench images headers device-trees lint typecheck clean

all: install

install:            ## what running needs: unicorn, capstone, pyelftools, click
	@echo "make: installing capsule (unicorn, capstone, pyelftools, click) with $(PYTHON)"
	@$(PIP) install -q -e . || $(PIP_HINT)

dev:                ## what building guests and testing need as well (cross clang, pytest, ...)
	@echo "make: installing capsule and its dev tools (ziglang, pytest, ...) with $(PYTHON)"
	@$(PIP) install -q -e '.[dev]' || $(PIP_HINT)

demo: install       ## run the built-in demo image on both architectures
	capsule run --arch riscv64
	capsule run --arch aarch64

# The suite takes about 4 minutes on an idle 2-core machine (longer under load): the first
# minute builds the guest programs, then pytest shows its progress; the time is printed.
test: dev           ## the whole suite (pytest exit 5, "no tests ran", counts as failure)
	@echo "make test: running the suite on 2 workers: about 4 minutes on an idle 2-core" \
	    "machine, longer under load; the guest programs are built first (about a minute)"
	@start=$$(date +%s); status=0; \
	$(PYTHON) -m pytest -q -n 2 || status=$$?; \
	echo "make test: finished in $$(( ($$(date +%s) - start) / 60 )) min" \
	    "$$(( ($$(date +%s) - start) % 60 )) s (pytest exit status $$status)"; \
	exit $$status

# The randomised tests (those marked `fuzz`) scaled up, one seed per round, until the time
# budget ends; findings are kept in build/fuzz/examples, the rounds in build/fuzz/report.json.
FUZZ_MINUTES ?= 60
FUZZ_SCALE ?= 20

fuzz: dev           ## the randomised tests scaled up for FUZZ_MINUTES (default 60)
	$(PYTHON) -m tests.fuzz --minutes $(FUZZ_MINUTES) --scale $(FUZZ_SCALE)

# The kernel and the emulator's trap path compiled with mypyc, as an option beside pure
# Python (which stays the default, the reference and what `make test` runs). mypyc works on
# copies of kernel/ and emulator/ in $(COMPILED), so no .so lands next to the sources (an
# extension loads before a .py of the same name). The rest of emulator/ (debugger, gdb
# server, snapshots) stays pure Python beside them. The native block hook
# (emulator/native/blockcount.c) is built beside emulator/blockcount.py, which makes the
# compiled build count instructions by block (CAPSULE_BLOCK_COUNT=0: Unicorn's counter).
# Rebuilt when a kernel or emulator source changes.
COMPILED := build/compiled
COMPILED_SOURCES := $(shell find kernel emulator -name '*.py' -o -name '*.c')
EMULATOR_COMPILED := machine liveregs liveram physmem rawhook fastregs cpu translation \
    icount counters arm_pmu

compiled: dev $(COMPILED)/.built  ## kernel/ and the emulator's trap path compiled with mypyc into build/compiled

$(COMPILED)/.built: $(COMPILED_SOURCES)
	rm -rf $(COMPILED) && mkdir -p $(COMPILED)
	cp -R kernel emulator $(COMPILED)/ && find $(COMPILED) -name __pycache__ -prune -exec rm -rf {} +
	cd $(COMPILED) && $(PYTHON) -m mypyc kernel/ $(EMULATOR_COMPILED:%=emulator/%.py)
	$(PYTHON) -m emulator.native.build $(COMPILED)/emulator/_blockcount.so
	touch $@

# The guest, ABI and CLI tests against the compiled kernel. It must come first on every
# path: PYTHONPATH for the `python -m capsule.cli` subprocesses, with PYTHONSAFEPATH so
# that they do not put the current directory (the sources) before it; pytest's own
# pythonpath and --import-mode=append so that pytest does not either. CAPSULE_COMPILED=1
# makes tests/conftest.py refuse to run unless every kernel module, in pytest and in a
# subprocess, is a compiled extension.
test-compiled: compiled  ## guest, ABI and CLI tests against build/compiled
	CAPSULE_COMPILED=1 PYTHONSAFEPATH=1 PYTHONPATH="$(CURDIR)/$(COMPILED):$(CURDIR)" \
	    $(PYTHON) -m pytest -q -n 2 --import-mode=append -o pythonpath="$(COMPILED) ." \
	    tests/guest tests/abi tests/cli

bench: dev          ## benchmarks with their raw-Unicorn floors: table on stdout, bench/results.json
	$(PYTHON) -m bench.run

images: dev         ## rebuild the guest programs and the shipped demo images
	$(PYTHON) -m userland.build

headers: dev        ## regenerate libsel4's generated headers from kernel/abi
	$(PYTHON) -m userland.libsel4.generate

device-trees: dev   ## regenerate the platforms' flattened device trees from their sources
	$(PYTHON) -m bootimage.device_trees

lint:
	$(PYTHON) -m ruff check capsule kernel emulator bootimage userland tests

typecheck:
	$(PYTHON) -m mypy

clean:
	rm -rf userland/build .pytest_cache
