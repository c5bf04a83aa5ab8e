# The two commands of the README: `make demo` and `make test`. Both install what is missing
# (scripts/setup.sh), configure and build with CMake into build/.
BUILD ?= build
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=

.PHONY: all setup build demo test asan clean

all: build

setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DPR_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

test: build
	ctest --test-dir $(BUILD) -j$(JOBS) --output-on-failure

asan: setup
	cmake -S . -B build-asan -DPR_WERROR=ON -DCMAKE_C_COMPILER=clang \
	  -DPR_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug -DPR_TEST_TIMEOUT_MULTIPLIER=4 >/dev/null
	cmake --build build-asan -j$(JOBS)
	ctest --test-dir build-asan -j$(JOBS) --output-on-failure

clean:
	rm -rf $(BUILD) build-asan
