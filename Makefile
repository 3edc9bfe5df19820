# vdb — see README.md.  `make`, `make check`, `make asan`, `make bench`, `make install PREFIX=...`
PREFIX  ?= /usr/local
BUILD   ?= build
PKGS     = libzstd libcrypto libssl sqlite3 libarchive libcurl jansson
SANITIZE ?=
OPT     ?= -O2
WERROR  ?= -Werror
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Wshadow -Wstrict-prototypes $(WERROR) \
	-Ilib -MMD -MP $(shell pkg-config --cflags $(PKGS))
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread -lm

PROGS    = vdb-admin vdb-coord vdb-index vdb-ingest vdb-meta vdb-query
LIB_SRC  = $(wildcard lib/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC = $(wildcard t/unit/*.c)
UNIT_BIN = $(UNIT_SRC:t/unit/%.c=$(BUILD)/t/unit/%)
BINS     = $(PROGS:%=$(BUILD)/bin/%)
MAN1     = $(wildcard man/*.1)
MAN7     = $(wildcard man/*.7)
MAN8     = $(wildcard man/*.8)

all: $(BINS) $(BUILD)/bin/vdb-gen $(BUILD)/bin/vdb-kbench $(BUILD)/bin/coord-load \
	$(BUILD)/bin/ann-vdb

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libvdb.a: $(LIB_OBJ)
	ar rcs $@ $^

define prog
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard cmd/$(1)/*.c)) $(BUILD)/libvdb.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog,$(p))))

# test-data generator used by t/ and bench/ (not installed)
$(BUILD)/bin/vdb-gen: $(BUILD)/t/bench/gen.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lm

# benchmark and load tools of t/bench (not installed)
$(BUILD)/bin/vdb-kbench: $(BUILD)/t/bench/kernel.o $(BUILD)/libvdb.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread -lm

$(BUILD)/bin/ann-vdb: $(BUILD)/t/bench/ann-vdb.o $(BUILD)/libvdb.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/coord-load: $(BUILD)/t/bench/coord-load.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/t/unit/%: $(BUILD)/t/unit/%.o $(BUILD)/libvdb.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcriterion

check: all $(UNIT_BIN)
	@sh t/run-unit.sh $(UNIT_BIN)
	@BUILD=$(abspath $(BUILD)) sh t/run-tests.sh

unit: $(UNIT_BIN)
	@sh t/run-unit.sh $(UNIT_BIN)

asan:
	$(MAKE) BUILD=build-asan SANITIZE=address,undefined OPT=-O1 CRASH_TRIALS=$(ASAN_TRIALS) \
		COORD_LOAD_SECONDS=$(ASAN_LOAD_SECONDS) check

ASAN_TRIALS ?= 60
# 200 clients each with a sanitized vdb-query: a shorter load than make check's 30 s
ASAN_LOAD_SECONDS ?= 10

# The README's first command ends here: a real run on the embedded default.
demo: all
	rm -rf demo-root
	$(BUILD)/bin/vdb-admin init demo-root
	$(BUILD)/bin/vdb-meta -d demo-root create docs --dim 16 --field year:int64 --field tag:string:16
	$(BUILD)/bin/vdb-gen -f jsonl -n 50000 -d 16 -y | $(BUILD)/bin/vdb-ingest -d demo-root docs | tail -2
	$(BUILD)/bin/vdb-ingest -d demo-root --flush docs
	$(BUILD)/bin/vdb-meta -d demo-root show docs
	$(BUILD)/bin/vdb-admin -d demo-root verify
	$(BUILD)/bin/vdb-admin -d demo-root dump docs | head -c 300; echo
	$(BUILD)/bin/vdb-gen -f fvecs -n 2 -d 16 -s 5 | $(BUILD)/bin/vdb-query -d demo-root \
		--format fvecs -k 3 --fields year,tag --filter 'year >= 2000 and tag in ["t1", "t2"]' docs
	$(BUILD)/bin/vdb-query -d demo-root --count --filter '1990 <= year < 2000' docs

soak: all
	BUILD=$(abspath $(BUILD)) CRASH_TRIALS=2000 sh t/t1400-ingest-crash.sh

bench: all
	BUILD=$(abspath $(BUILD)) sh t/bench/ingest.sh
	BUILD=$(abspath $(BUILD)) sh t/bench/query.sh
	BUILD=$(abspath $(BUILD)) sh t/bench/ann.sh

install: all
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7 \
		$(DESTDIR)$(PREFIX)/share/man/man8
	cp $(BINS) $(DESTDIR)$(PREFIX)/bin/
	cp $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/
	cp $(MAN7) $(DESTDIR)$(PREFIX)/share/man/man7/
	cp $(MAN8) $(DESTDIR)$(PREFIX)/share/man/man8/

format-check:
	clang-format --dry-run -Werror lib/*.c lib/*.h cmd/*/*.c cmd/*/*.h t/unit/*.c t/bench/*.c

format:
	clang-format -i lib/*.c lib/*.h cmd/*/*.c cmd/*/*.h t/unit/*.c t/bench/*.c

clean:
	rm -rf build build-asan demo-root

.PHONY: all check unit asan soak bench demo install format format-check clean
.PRECIOUS: $(BUILD)/%.o $(BUILD)/t/unit/%.o

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
