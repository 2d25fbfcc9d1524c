# sluice - see README.md. `make demo` and `make test` install what is missing first.
#
# Builds go to build/$(BUILD)/ (release, asan, tsan, fuzz, bench, instr); programs to bin/ (release).
# Layers (each uses only those below it): src/ codec -> engine -> actors/ -> pipeline runtime
# -> programs (cli/, examples/, bench/). Only include/ is public: the shared library exports
# the SLUICE_EXPORT declarations alone (-fvisibility=hidden).

BUILD    ?= release
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
TIMEOUT  ?= 600

PKGS      := libczmq libzmq
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lpthread
CRIT_LIBS  = $(shell pkg-config --libs criterion)

# Compiler flags, stated once: warnings, language, and per build the optimisation and sanitizers.
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
LANG     := -std=gnu11 -fPIC -MMD -MP
ASAN_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
ifeq ($(BUILD),release)
  OPT := -O2 -g
else ifeq ($(BUILD),asan)
  OPT := $(ASAN_OPT)
else ifeq ($(BUILD),tsan)
  OPT := -O1 -g -fsanitize=thread
else ifeq ($(BUILD),fuzz)
  CC  := clang
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
else ifeq ($(BUILD),bench)
  OPT := -O3 -DNDEBUG -march=native
else ifeq ($(BUILD),instr)
  # bench's flags without -march=native: valgrind 3.19 stops at AVX-512 instructions (SIGILL)
  OPT := -O3 -DNDEBUG -g
else
  $(error BUILD must be release, asan, tsan, fuzz, bench or instr)
endif
SAN       = $(filter -fsanitize=%,$(OPT))
CFLAGS_ALL = $(LANG) $(WARN) $(OPT) -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LIB_CFLAGS = $(CFLAGS_ALL) -Isrc -fvisibility=hidden
LDFLAGS_ALL = $(filter-out -fsanitize=fuzzer-no-link,$(SAN)) $(LDFLAGS)

OUT       := build/$(BUILD)
LIB_SRC   := $(wildcard src/*.c) $(wildcard actors/*.c)
LIB_OBJ   := $(patsubst %.c,$(OUT)/obj/%.o,$(LIB_SRC))
CLI_SRC   := $(wildcard cli/*.c)
CLI_OBJ   := $(patsubst %.c,$(OUT)/obj/%.o,$(CLI_SRC))
STATIC    := $(OUT)/lib/libsluice.a
SHARED    := $(OUT)/lib/libsluice.so
EXAMPLES  := $(patsubst examples/%.c,$(OUT)/bin/%,$(wildcard examples/*.c)) $(OUT)/bin/sluice
TESTS     := $(patsubst tests/%.c,$(OUT)/tests/%,$(wildcard tests/test_*.c))
HELPERS   := $(patsubst tests/helpers/%.c,$(OUT)/tests/helpers/%,$(wildcard tests/helpers/*.c))

.PHONY: all build lib examples tests deps demo test check install uninstall clean \
        tsan valgrind bench bench-build bench-instr fuzz

all: deps
	@$(MAKE) --no-print-directory build

build: lib examples tests
ifeq ($(BUILD),release)
	@mkdir -p bin && for p in $(EXAMPLES); do ln -sf ../$$p bin/; done
endif

lib: $(STATIC) $(SHARED)
examples: $(EXAMPLES)
tests: $(TESTS) $(HELPERS)

deps:
	@bash scripts/deps.sh

# The library: internal headers (src/) visible, symbols hidden unless exported
$(OUT)/obj/src/%.o $(OUT)/obj/actors/%.o: CFLAGS_OBJ = $(LIB_CFLAGS)
# The command line uses the public API only
$(OUT)/obj/cli/%.o: CFLAGS_OBJ = $(CFLAGS_ALL)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_OBJ) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libsluice.so.0 $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# Programs and tests link the static library; tests, fuzzers and benchmarks may use src/ too.
$(OUT)/bin/sluice: $(CLI_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $(CLI_OBJ) -o $@ $(STATIC) $(PKG_LIBS)

$(OUT)/bin/%: examples/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) $< -o $@ $(STATIC) $(PKG_LIBS)

$(OUT)/tests/helpers/%: tests/helpers/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc $(LDFLAGS_ALL) $< -o $@ $(STATIC) $(PKG_LIBS)

$(OUT)/tests/%: tests/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc $(LDFLAGS_ALL) $< -o $@ $(STATIC) $(PKG_LIBS) $(CRIT_LIBS)

# The multi-process tests start bin/sluice and the helpers of the same build
$(OUT)/tests/test_cli $(OUT)/tests/test_cli_security: $(OUT)/bin/sluice
$(OUT)/tests/test_faults $(OUT)/tests/test_multihost $(OUT)/tests/test_journal_crash: $(OUT)/bin/sluice $(HELPERS)

-include $(shell find build -name '*.d' 2>/dev/null)

# The scenario runners, as the README shows them.
demo: all
	@bash scripts/deps.sh demo
	./bin/llm_stream
	@if [ -x bin/model_server ]; then ./bin/model_server; fi
	./bin/model_server --stream --cancel -n 3 --load-time 500
	./bin/sluice run examples/pipelines/speak.cfg > build/speech.wav
	@echo "speech: build/speech.wav, $$(stat -c %s build/speech.wav) bytes of WAV (listen: aplay build/speech.wav)"

# Benchmarks (bench/README.md): each bench/*.c is one program, built with the BUILD=bench flags
# against build/bench/lib/libsluice.a and run. `make bench QUICK=1` runs the short version.
# The table goes to stdout, JSON to build/bench/results.json. The cross-process rows start
# build/bench/bin/sluice; the Python row runs bench/seed_buffer.py with python3 when there is one.
# The tcp processes row's Redis baseline runs redis-server, which `make bench` installs when
# missing (only here: `make test` never needs it).
# `make bench-instr` counts instructions per item under callgrind (valgrind, installed by
# scripts/deps.sh when missing) with the BUILD=instr flags; JSON to build/instr/instr.json.
BENCH_OUT    := build/bench
BENCH_PROGS  := $(patsubst bench/%.c,%,$(wildcard bench/*.c))
BENCH_ARGS    = $(if $(filter-out 0,$(QUICK)),--quick)

bench: deps
	@SLUICE_DEPS_EXTRA=redis-server bash scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=bench bench-build
	@for p in $(BENCH_PROGS); do \
	  json=$(BENCH_OUT)/$$p.json; [ $$p = bench ] && json=$(BENCH_OUT)/results.json; \
	  timeout $(TIMEOUT) $(BENCH_OUT)/bin/$$p $(BENCH_ARGS) --json $$json || exit 1; \
	done

bench-instr: deps
	@SLUICE_DEPS_EXTRA=valgrind bash scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=instr bench-build
	timeout $(TIMEOUT) build/instr/bin/bench --instr $(BENCH_ARGS) --json build/instr/instr.json

bench-build: lib $(patsubst %,$(OUT)/bin/%,$(BENCH_PROGS)) $(OUT)/bin/sluice

$(OUT)/bin/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(STATIC) $(PKG_LIBS) -lm

# Every test, in the normal build and under AddressSanitizer + UBSan, then the examples of
# README.md and docs/ (scripts/doc-tests.sh: C blocks built with ASan, sh blocks with bin/).
test: deps
	@$(MAKE) --no-print-directory BUILD=release build
	@$(MAKE) --no-print-directory BUILD=asan build
	@SLUICE_DOC_TESTS=build/asan SLUICE_DOC_CFLAGS="$(ASAN_OPT)" \
	  bash scripts/run-tests.sh $(TIMEOUT) build/release/tests build/asan/tests

check: test

# ThreadSanitizer: Criterion cannot start under TSan (its arena fails to map), so the
# concurrent scenarios run from a plain program, tests/race_scenarios.c.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=tsan lib
	$(CC) $(CFLAGS_ALL) -Isrc -fsanitize=thread tests/race_scenarios.c \
	  -o build/tsan/race_scenarios build/tsan/lib/libsluice.a $(PKG_LIBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/scripts/tsan.supp" \
	  timeout $(TIMEOUT) build/tsan/race_scenarios

valgrind: deps
	@SLUICE_DEPS_EXTRA=valgrind bash scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=release tests
	@SLUICE_VALGRIND=1 bash scripts/run-tests.sh $(TIMEOUT) build/release/tests

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/*.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libsluice.so.0
	ln -sf libsluice.so.0 $(DESTDIR)$(PREFIX)/lib/libsluice.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' scripts/sluice.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sluice.pc
	@if [ -x $(OUT)/bin/sluice ]; then install -m 755 $(OUT)/bin/sluice $(DESTDIR)$(PREFIX)/bin/; fi
	@$(LDCONFIG_STEP)

# The dynamic linker finds a new libsluice.so.0 only once its cache is refreshed: run ldconfig
# when installing into this system as root, else say what to do.
LDCONFIG_STEP = if [ -n "$(DESTDIR)" ]; then \
	  echo "note: run ldconfig on the target system once $(PREFIX)/lib is in place"; \
	elif [ "$$(id -u)" -ne 0 ] || ! command -v ldconfig >/dev/null; then \
	  echo "note: run 'sudo ldconfig' before running programs linked with -lsluice"; \
	else \
	  ldconfig && echo "ldconfig: done"; \
	  ldconfig -p | grep -q '$(PREFIX)/lib/libsluice.so.0' || \
	    echo "note: $(PREFIX)/lib is not in the linker's path: add it to /etc/ld.so.conf.d/ and run ldconfig, or set LD_LIBRARY_PATH=$(PREFIX)/lib"; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/include/,$(notdir $(wildcard include/*.h)))
	rm -f $(DESTDIR)$(PREFIX)/lib/libsluice.a $(DESTDIR)$(PREFIX)/lib/libsluice.so* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/sluice.pc $(DESTDIR)$(PREFIX)/bin/sluice

clean:
	rm -rf build bin

# libFuzzer targets (fuzz/README.md): the protocol decoder, a whole buffer actor, and the
# transforms' chunk invariance. Each runs
# FUZZ_SECONDS (default 60) from its seed corpus in fuzz/corpus/NAME; new inputs it finds go to
# build/fuzz/corpus-NAME, crashes to build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))

fuzz:
	@SLUICE_DEPS_EXTRA="clang libclang-rt-14-dev" bash scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=fuzz lib
	@for t in $(FUZZ_TARGETS); do \
	  clang -std=gnu11 $(WARN) -Iinclude -Isrc -O1 -g -fsanitize=fuzzer,address,undefined \
	    $(PKG_CFLAGS) fuzz/$$t.c -o build/fuzz/$$t build/fuzz/lib/libsluice.a $(PKG_LIBS) || exit 1; \
	done
	@for t in $(FUZZ_TARGETS); do \
	  name=$${t#fuzz_}; mkdir -p build/fuzz/corpus-$$name; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=20 \
	    -artifact_prefix=build/fuzz/ -print_final_stats=1 \
	    build/fuzz/corpus-$$name fuzz/corpus/$$name > build/fuzz/$$t.log 2>&1; rc=$$?; \
	  tail -n 12 build/fuzz/$$t.log; [ $$rc -eq 0 ] || { echo "$$t FAILED (log: build/fuzz/$$t.log)"; exit 1; }; \
	done
