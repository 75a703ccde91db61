# fuzz.mk - libFuzzer harnesses of the parsers (included by the Makefile).
#
#   make fuzz-build                  build/fuzz/fuzz_<harness>, clang with ASan + UBSan
#   make test-fuzz                   the fuzz tier of make test alone (tests/fuzz/test_fuzz.sh)
#   make fuzz [FUZZ_SECONDS=600]     run every harness for FUZZ_SECONDS each, one at a
#            [FUZZ_HARNESSES="job png"]  time, at nice 19; new inputs go to build/fuzz/corpus
#
# The library is compiled a second time with clang, coverage instrumentation
# (-fsanitize=fuzzer-no-link) and the sanitizers, under build/fuzz; the test
# tier (tests/fuzz/test_fuzz.sh) replays the corpora and fuzzes a few seconds.

FUZZ_CC ?= clang
FUZZ_BUILD := build/fuzz
FUZZ_SECONDS ?= 600
# every tests/fuzz/fuzz_<name>.c is a harness (a new reader: add fuzz_<name>.c and corpus/<name>/)
FUZZ_HARNESSES ?= $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CPPFLAGS := -Icommon -Iworkers -Itests/fuzz -I$(FUZZ_BUILD)/gen -DSALCHECK_REQUIRE_ONNX
FUZZ_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -O1 -g -Wall -Wextra \
               -Wno-unused-parameter -MMD -MP $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(PKG_CFLAGS)
FUZZ_CXX ?= clang++
FUZZ_CXXFLAGS := -std=c++17 -O1 -g -Wall -Wextra -Wno-unused-parameter -MMD -MP $(FUZZ_SAN) \
                 -fsanitize=fuzzer-no-link $(PKG_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(LIB_CXX_SRC:%.cc=$(FUZZ_BUILD)/obj/%.o) \
                $(FUZZ_BUILD)/obj/gen/onnx.pb-c.o
FUZZ_LIB := $(FUZZ_BUILD)/libsalcheck.a
FUZZ_BIN := $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build test-fuzz
fuzz-build: $(FUZZ_BIN)

test-fuzz: $(FUZZ_BIN)
	@BUILD=$(BUILD) TIERS=fuzz bash tests/run_tests.sh

$(FUZZ_BUILD)/gen/onnx/onnx.pb-c.c: | $(DEPS_STAMP)
	@mkdir -p $(FUZZ_BUILD)/gen
	protoc-c --c_out=$(FUZZ_BUILD)/gen -I$(ONNX_INCLUDE) $(ONNX_PROTO)
$(FUZZ_BUILD)/gen/onnx/onnx.pb-c.h: $(FUZZ_BUILD)/gen/onnx/onnx.pb-c.c
$(FUZZ_BUILD)/obj/gen/onnx.pb-c.o: $(FUZZ_BUILD)/gen/onnx/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/obj/common/nn/onnx_import.o: $(FUZZ_BUILD)/gen/onnx/onnx.pb-c.h
$(FUZZ_BUILD)/obj/tests/fuzz/fuzz_onnx.o: $(FUZZ_BUILD)/gen/onnx/onnx.pb-c.h

$(FUZZ_BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: %.cc | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer $< $(FUZZ_LIB) $(PKG_LIBS) $(DCMTK_LIBS) -lm -o $@

# One harness at a time at nice 19 (the machine is shared); the first corpus
# directory collects what the fuzzer finds, tests/fuzz/corpus stays as committed.
fuzz: $(FUZZ_BIN)
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run_fuzz.sh $(FUZZ_HARNESSES)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.d)
