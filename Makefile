# hssl: the two commands a new user needs are `make run` and `make test`.
#
#   make run                      pretrain + linear probe on CIFAR-10 (CPU budget, ~15 min)
#   make run BUDGET=paper         the paper's full budget (for a GPU)
#   make run DATA=/path/to/cifar-10-batches-bin OUT=runs/mine
#   make test                     the test suite (installs and builds what is missing)

DATA   ?= data/cifar-10-batches-bin
BUDGET ?= quick
OUT    ?= runs/main
HSSL   := target/release/hssl
CARGO  ?= cargo

.PHONY: all deps build run test bench soak fmt clean

all: build

deps:
	@./scripts/setup-libtorch.sh

build: deps
	$(CARGO) build --release

run: build
	@if [ ! -d "$(DATA)" ]; then \
		echo "$(DATA) not found: downloading CIFAR-10 into $(dir $(DATA))"; \
		$(HSSL) data download cifar10 --dir "$(dir $(DATA))" || exit 1; \
	fi
	@if [ -f "$(OUT)/checkpoint.ot" ]; then resume=--resume; else resume=; fi; \
	$(HSSL) pretrain --config configs/$(BUDGET).toml --data "$(DATA)" --out "$(OUT)" $$resume
	$(HSSL) probe --checkpoint "$(OUT)/checkpoint.ot" --data "$(DATA)"

test: deps
	$(CARGO) test --release

bench: build
	./scripts/bench.sh

soak: deps
	./scripts/soak.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
