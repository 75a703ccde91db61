# salcheck - build, dependency step, test tiers, demo.
#
#   make            build build/salcheck (installs missing Debian packages when root)
#   make test       build and run every test tier (ends with "TOTAL: N passed, N failed")
#   make demo       run jobs/demo.ini on the phantom data set
#   make SAN=1 ...  build with AddressSanitizer and UBSan (objects under build/san)
#   make bench      benchmarks (bench/README.md holds the results)

SHELL := /bin/bash
CC ?= gcc
ifeq ($(CC),cc)
CC := gcc
endif

# Debian 12 packages: to build, and to run the cross-checks against reference libraries.
DEPS_BUILD := gcc make pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools \
              libopenblas-dev libpng-dev zlib1g-dev libinih-dev libprotobuf-c-dev \
              protobuf-c-compiler libonnx-dev g++ libjpeg62-turbo-dev libdcmtk-dev libjansson-dev
DEPS_TEST  := python3 python3-numpy python3-torch python3-torchvision python3-onnx python3-h5py \
              python3-skimage python3-sklearn python3-scipy python3-matplotlib python3-pandas shellcheck \
              slurmd slurmctld slurm-client munge libpmix-dev chromium \
              python3-pydicom python3-pil dcmtk

ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else
BUILD ?= build
SANFLAGS :=
OPT := -O3 -march=native -g
endif

PKGS := ompi-c hdf5-openmpi openblas libpng inih libprotobuf-c libjpeg jansson
# DICOM through DCMTK (common/io/dicom.cc, the one C++ file): the data and codec libraries only.
CXX ?= g++
DCMTK_LIBS := -ldcmjpls -ldcmjpeg -ldcmimgle -ldcmdata -loflog -lofstd -lstdc++
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS += -Icommon -Iworkers -Idriver -I$(BUILD)/gen -Itests/unit -DSALCHECK_REQUIRE_ONNX
CFLAGS += -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(OPT) -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation \
          -MMD -MP $(SANFLAGS) $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) $(DCMTK_LIBS) -lm
CXXFLAGS += -std=c++17 $(OPT) -Wall -Wextra -Wno-unused-parameter -MMD -MP $(SANFLAGS)
LDFLAGS += $(SANFLAGS)

LIB_SRC := $(shell find common workers -name '*.c' 2>/dev/null | sort)
DRV_SRC := $(sort $(wildcard driver/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_CXX_SRC := $(shell find common -name '*.cc' 2>/dev/null | sort)
LIB_OBJ += $(LIB_CXX_SRC:%.cc=$(BUILD)/obj/%.o)

# ONNX import: C code generated from the onnx.proto that Debian's libonnx-dev ships.
ONNX_PROTO := /usr/include/onnx/onnx.proto
GEN_ONNX_C := $(BUILD)/gen/onnx/onnx.pb-c.c
GEN_ONNX_H := $(BUILD)/gen/onnx/onnx.pb-c.h
GEN_ONNX_O := $(BUILD)/obj/gen/onnx.pb-c.o
LIB_OBJ += $(GEN_ONNX_O)
DRV_OBJ := $(DRV_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB := $(BUILD)/libsalcheck.a
BIN := $(BUILD)/salcheck
DEPS_STAMP := build/.deps-build

.PHONY: all deps deps-test test test-unit test-mpi test-slurm demo bench clean
all: $(BIN)

# The dependency step: install what is missing as root, else print the one line to run.
define check_deps
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "salcheck: installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing || exit 1; \
	  else \
	    echo "salcheck: missing Debian packages; run as root:  apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
endef

$(DEPS_STAMP):
	$(call check_deps,$(DEPS_BUILD))
	@mkdir -p build && touch $@
deps: $(DEPS_STAMP)
build/.deps-test: $(DEPS_STAMP)
	$(call check_deps,$(DEPS_TEST))
	@touch $@
deps-test: build/.deps-test

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cc | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(GEN_ONNX_C): | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -I/usr/include $(ONNX_PROTO)
$(GEN_ONNX_H): $(GEN_ONNX_C)
$(GEN_ONNX_O): $(GEN_ONNX_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/common/nn/onnx_import.o: $(GEN_ONNX_H)
$(BUILD)/obj/driver/cmd_import.o $(BUILD)/obj/driver/cmd_explain.o: $(GEN_ONNX_H)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(DRV_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(DRV_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# Test tiers. tests/run_tests.sh runs every binary and script, sums their
# "N passed, N failed" lines and prints the TOTAL line last.
test: build/.deps-test $(BIN) $(TEST_BIN)
	@BUILD=$(BUILD) bash tests/run_tests.sh $(TEST_BIN)

test-unit: $(BIN) $(TEST_BIN)
	@BUILD=$(BUILD) TIERS=unit bash tests/run_tests.sh $(TEST_BIN)

test-mpi: build/.deps-test $(BIN)
	@BUILD=$(BUILD) TIERS=mpi bash tests/run_tests.sh

test-slurm: build/.deps-test $(BIN)
	@BUILD=$(BUILD) TIERS=slurm bash tests/run_tests.sh

# The main job: jobs/demo.ini on the phantom data set, one rank per core.
# OpenBLAS picks its own kernels for this CPU (an inherited OPENBLAS_CORETYPE
# pin can halve the GEMM speed; bench/README.md).
DEMO_RANKS ?= $(shell nproc)
demo: $(BIN)
	env -u OPENBLAS_CORETYPE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 \
	  mpirun --oversubscribe -np $(DEMO_RANKS) $(BIN) run jobs/demo.ini --force
	$(BIN) report build/demo/results.h5 --out build/demo/report

bench: $(BIN) $(BENCH_BIN)
	@BUILD=$(BUILD) bash bench/run.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(DRV_OBJ:.o=.d) $(TEST_SRC:tests/unit/%.c=$(BUILD)/obj/tests/unit/%.d) \
         $(BENCH_SRC:bench/%.c=$(BUILD)/obj/bench/%.d)
