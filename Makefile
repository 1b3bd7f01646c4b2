# capsule: the two promises of the README, plus the developer targets.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: all install dev demo test bench images headers lint typecheck clean

all: install

install:            ## what running needs: unicorn, capstone, pyelftools, click
	$(PIP) install -q -e .

dev:                ## what building guests and testing need as well (cross clang, pytest, ...)
	$(PIP) install -q -e '.[dev]'

demo: install       ## run the built-in demo image on both architectures
	capsule run --arch riscv64
	capsule run --arch aarch64

test: dev           ## the whole suite (pytest exit 5, "no tests ran", counts as failure)
	$(PYTHON) -m pytest -q -n 2

bench: dev          ## benchmarks with their raw-Unicorn floors: table on stdout, bench/results.json
	$(PYTHON) -m bench.run

images: dev         ## rebuild the guest programs and the shipped demo images
	$(PYTHON) -m userland.build

headers: dev        ## regenerate libsel4's generated headers from kernel/abi
	$(PYTHON) -m userland.libsel4.generate

lint:
	$(PYTHON) -m ruff check kernel emulator bootimage userland tests

typecheck:
	$(PYTHON) -m mypy

clean:
	rm -rf userland/build .pytest_cache
