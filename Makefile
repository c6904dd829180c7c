# Thin front for CMake. `make demo` and `make test` are the two commands a
# newcomer needs; both install missing Debian packages first (scripts/deps.sh:
# `make demo` only what the demo needs, `make test` and `make deps` everything).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
DEPS       ?= yes
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

# Only the two programs the demo runs (not the unit tests), in build-demo/ (or
# in $(BUILD) when given) at -O0, which builds in half the time; an existing
# build directory keeps its build type. The build's missing packages are
# installed first, the rest (Postgres) while it builds. `make demo DEPS= BUILD=`
# neither installs nor builds: it runs $SFBRIDGE_BIN and $LOCALFORCE_BIN
# (tests/e2e/test_demo.py).
DEMO_BUILD = $(if $(filter file,$(origin BUILD)),build-demo,$(BUILD))
demo:
ifneq ($(DEMO_BUILD),)
	@$(if $(DEPS),scripts/deps.sh demo --) sh -c 'cmake -S . -B $(DEMO_BUILD) \
	  $(if $(wildcard $(DEMO_BUILD)/CMakeCache.txt),,-DCMAKE_BUILD_TYPE=Demo -DCMAKE_C_FLAGS_DEMO="-O0 -DNDEBUG") >/dev/null && \
	  cmake --build $(DEMO_BUILD) -j $(JOBS) --target sfbridge localforce'
	@SFBRIDGE_BIN=$(abspath $(DEMO_BUILD))/sfbridge LOCALFORCE_BIN=$(abspath $(DEMO_BUILD))/localforce scripts/demo.sh
else
	@$(if $(DEPS),scripts/deps.sh demo)
	@scripts/demo.sh
endif

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

# --- installing, packages, images (docs/operations.md) ---------------------
# `make install` builds the two programs in $(BUILD) and installs them, the man
# pages, the systemd unit and the docs under $(DESTDIR)$(PREFIX) (CMake's
# install rules); `make uninstall` removes what the same install puts there.
# `make deb`: $(BUILD)/sfbridge_<version>_<arch>.deb. `make docker`: the image
# sfbridge:<version> (packaging/Dockerfile; needs a Docker daemon).
PREFIX ?= /usr/local
DESTDIR ?=
SFBRIDGE_VERSION = $(shell grep -rhoP '^\#define SFBRIDGE_VERSION "\K[^"]+' src/sfbridge | head -1)

# The two programs only (an existing $(BUILD) keeps its build type).
define build_programs
	@cmake -S . -B $(BUILD) $(if $(wildcard $(BUILD)/CMakeCache.txt),,-DCMAKE_BUILD_TYPE=RelWithDebInfo) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sfbridge localforce
endef

.PHONY: install uninstall deb docker

install:
	$(build_programs)
	@DESTDIR="$(abspath $(DESTDIR))" cmake --install $(BUILD) --prefix $(PREFIX)

uninstall:
	$(build_programs)
	@packaging/uninstall.sh $(BUILD) $(PREFIX) "$(abspath $(DESTDIR))"

deb:
	$(build_programs)
	@packaging/deb.sh $(BUILD)

docker:
	docker build -f packaging/Dockerfile -t sfbridge:$(SFBRIDGE_VERSION) -t sfbridge:latest .
