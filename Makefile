# Thin front for CMake. `make demo` and `make test` are the two commands a
# newcomer needs; both install missing Debian packages first (scripts/deps.sh).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
MAKEFLAGS  += --no-print-directory

.PHONY: all build asan deps test unit demo bench fuzz clean format lint

all: build

deps:
	@scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test: deps
	@scripts/test.sh

unit: build
	@cd $(BUILD) && ctest --output-on-failure

demo: deps build
	@scripts/demo.sh

bench: deps build
	@bench/run.sh

fuzz: deps
	@scripts/fuzz.sh

# The same files scripts/lint.sh checks.
format:
	@clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/unit/*.c' 'tests/fuzz/*.c' 'bench/*.c')

lint:
	@scripts/lint.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
