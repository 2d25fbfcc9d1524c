# sluice — see README.md. `make demo` and `make test` install what is missing first.
#
# Builds go to build/$(BUILD)/ (release, asan, tsan); programs to bin/ (release build).

BUILD    ?= release
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
TIMEOUT  ?= 600

PKGS      := libczmq libzmq
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lpthread
CRIT_LIBS  = $(shell pkg-config --libs criterion)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASE     := -std=gnu11 $(WARN) -Iinclude -Isrc -fPIC
ifeq ($(BUILD),release)
  OPT := -O2 -g
  SAN :=
else ifeq ($(BUILD),asan)
  OPT := -O1 -g -fno-omit-frame-pointer
  SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(BUILD),tsan)
  OPT := -O1 -g
  SAN := -fsanitize=thread
else ifeq ($(BUILD),fuzz)
  CC  := clang
  OPT := -O1 -g -fno-omit-frame-pointer
  SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
else ifeq ($(BUILD),bench)
  OPT := -O3 -DNDEBUG -march=native
  SAN :=
else
  $(error BUILD must be release, asan, tsan, fuzz or bench)
endif
ALL_CFLAGS = $(BASE) $(OPT) $(SAN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)

OUT       := build/$(BUILD)
LIB_SRC   := $(wildcard src/*.c) $(wildcard actors/*.c)
LIB_OBJ   := $(patsubst %.c,$(OUT)/obj/%.o,$(LIB_SRC))
HEADERS   := $(wildcard include/*.h) $(wildcard src/*.h)
STATIC    := $(OUT)/lib/libsluice.a
SHARED    := $(OUT)/lib/libsluice.so
EXAMPLES  := $(patsubst examples/%.c,$(OUT)/bin/%,$(wildcard examples/*.c))
TESTS     := $(patsubst tests/%.c,$(OUT)/tests/%,$(wildcard tests/test_*.c))

.PHONY: all build lib examples tests deps demo test check install uninstall clean \
        tsan valgrind bench fuzz

all: deps
	@$(MAKE) --no-print-directory build

build: lib examples tests
ifeq ($(BUILD),release)
	@mkdir -p bin && for p in $(EXAMPLES); do ln -sf ../$$p bin/; done
endif

lib: $(STATIC) $(SHARED)
examples: $(EXAMPLES) $(OUT)/bin/sluice
tests: $(TESTS)

deps:
	@bash scripts/deps.sh

$(OUT)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libsluice.so.0 $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(OUT)/bin/%: examples/%.c $(STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< -o $@ $(STATIC) $(PKG_LIBS)

# bin/sluice, the command line: every src/cli/*.c in one program; linked into bin/ as well.
EXAMPLES += $(OUT)/bin/sluice
$(OUT)/bin/sluice: $(wildcard src/cli/*.c) $(wildcard src/cli/*.h) $(STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/cli $(ALL_LDFLAGS) $(wildcard src/cli/*.c) -o $@ $(STATIC) $(PKG_LIBS)

# The multi-process tests start bin/sluice of the same build
$(OUT)/tests/test_cli: $(OUT)/bin/sluice
$(OUT)/tests/test_cli_security: $(OUT)/bin/sluice

# Helper programs the fault tests exec (tests/helpers/*.c), linked with libsluice
$(OUT)/tests/helpers/%: tests/helpers/%.c $(STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< -o $@ $(STATIC) $(PKG_LIBS)
$(OUT)/tests/test_faults $(OUT)/tests/test_multihost: $(OUT)/bin/sluice $(OUT)/tests/helpers/fault_helper

$(OUT)/tests/%: tests/%.c $(STATIC) $(HEADERS) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< -o $@ $(STATIC) $(PKG_LIBS) $(CRIT_LIBS)

# The scenario runners, as the README shows them.
demo: all
	./bin/llm_stream
	@if [ -x bin/model_server ]; then ./bin/model_server; fi

# Benchmarks (bench/README.md): each bench/*.c is one program, built with the BUILD=bench flags
# against build/bench/lib/libsluice.a and run. `make bench QUICK=1` runs the short version. The table goes to stdout, JSON to
# build/bench/results.json.
BENCH_OUT    := build/bench
BENCH_PROGS  := $(patsubst bench/%.c,%,$(wildcard bench/*.c))
BENCH_CFLAGS  = -std=gnu11 $(WARN) -Iinclude -O3 -DNDEBUG -march=native $(PKG_CFLAGS) $(CFLAGS)
BENCH_LIBS    = $(BENCH_OUT)/lib/libsluice.a $(PKG_LIBS) -lm
BENCH_ARGS    = $(if $(filter-out 0,$(QUICK)),--quick)

bench: deps
	@$(MAKE) --no-print-directory BUILD=bench lib
	@mkdir -p $(BENCH_OUT)/bin
	@for p in $(BENCH_PROGS); do \
	  echo "$(CC) ... bench/$$p.c -o $(BENCH_OUT)/bin/$$p"; \
	  $(CC) $(BENCH_CFLAGS) $(LDFLAGS) bench/$$p.c -o $(BENCH_OUT)/bin/$$p $(BENCH_LIBS) || exit 1; \
	done
	@for p in $(BENCH_PROGS); do \
	  json=$(BENCH_OUT)/$$p.json; [ $$p = bench ] && json=$(BENCH_OUT)/results.json; \
	  timeout $(TIMEOUT) $(BENCH_OUT)/bin/$$p $(BENCH_ARGS) --json $$json || exit 1; \
	done

# Every test, in the normal build and under AddressSanitizer + UBSan.
test: deps
	@$(MAKE) --no-print-directory BUILD=release build
	@$(MAKE) --no-print-directory BUILD=asan build
	@bash scripts/run-tests.sh $(TIMEOUT) build/release/tests build/asan/tests

check: test

# ThreadSanitizer: Criterion cannot start under TSan (its arena fails to map), so the
# concurrent scenarios run from a plain program, tests/race_scenarios.c.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=tsan lib
	$(CC) $(BASE) -O1 -g -fsanitize=thread $(PKG_CFLAGS) tests/race_scenarios.c \
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

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/include/,$(notdir $(wildcard include/*.h)))
	rm -f $(DESTDIR)$(PREFIX)/lib/libsluice.a $(DESTDIR)$(PREFIX)/lib/libsluice.so* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/sluice.pc $(DESTDIR)$(PREFIX)/bin/sluice

clean:
	rm -rf build bin

# libFuzzer targets (fuzz/README.md): the protocol decoder and a whole buffer actor. Each runs
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
