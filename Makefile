# RoboShop in C: build every service and libshop, run the shop, run the tests.
# Plain GNU make. `make V=1` shows full commands; `make SAN=1` builds with ASan+UBSan
# into build/asan, `make SAN=thread` with ThreadSanitizer into build/tsan, `make COV=1` with gcov
# instrumentation into build/cov (`make coverage` measures it, see docs/TESTING.md).
# `make ARCH=arm64` cross-compiles for arm64 into build/arm64 (Debian's gcc-aarch64-linux-gnu; every library
# from source, deps/build), `make dist ARCH=arm64` writes the <svc>-VERSION-arm64.zip archives.
# User CFLAGS/LDFLAGS are merged, never replaced.

ARCH    ?= amd64
override ARCH := $(patsubst x86_64,amd64,$(patsubst aarch64,arm64,$(ARCH)))
ifeq ($(ARCH),arm64)
CC      := aarch64-linux-gnu-gcc
DEPS    := lean
else
CC      ?= cc
endif
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# Every library (libmicrohttpd, libcurl, libmongoc, hiredis, libmariadb, rabbitmq-c, jansson, libsodium,
# libxcrypt, OpenSSL, zlib) comes from deps/deps.mk: with DEPS=lean, static builds linked into each binary, so
# it needs only the C library (glibc 2.34 or later, see deps/build).
# Goals that compile nothing do not need them.
NOBUILD_GOALS := stop status test coverage clean distclean format format-check
ifneq ($(if $(MAKECMDGOALS),$(filter-out $(NOBUILD_GOALS),$(MAKECMDGOALS)),all),)
include deps/deps.mk
endif

ifeq ($(SAN),1)
BUILD   ?= build/asan
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLD   := -fsanitize=address,undefined
else ifneq ($(ARCH),amd64)
BUILD   ?= build/$(ARCH)
OPT     := -O2 -g -D_FORTIFY_SOURCE=2
SANLD   :=
else ifeq ($(SAN),thread)
BUILD   ?= build/tsan
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
SANLD   := -fsanitize=thread
else ifeq ($(COV),1)
BUILD   ?= build/cov
OPT     := -O0 -g --coverage
SANLD   := --coverage
else
BUILD   ?= build
OPT     := -O2 -g -D_FORTIFY_SOURCE=2
SANLD   :=
endif

ifneq ($(filter images,$(MAKECMDGOALS)),)
ifneq ($(BUILD),build)
$(error make images takes the plain build in build/ (no SAN, COV, ARCH or BUILD))
endif
endif

WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wpointer-arith \
        -Wcast-qual -Wsign-compare -Wformat=2 -Wno-missing-field-initializers
PKG_CFLAGS := $(patsubst -I%,-isystem %,$(DEP_CFLAGS))

# Each function and object in a section of its own, and the link drops the sections nothing
# reaches (--gc-sections): a library's unused functions and tables then cost no page of the binary,
# and no relocation the loader must apply at every start (the static libraries are compiled the
# same way, deps/build).
ALL_CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fstack-protector-strong -pthread -MMD -MP \
               -ffunction-sections -fdata-sections -I. -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := -pthread $(SANLD) -Wl,--as-needed -Wl,--gc-sections $(LDFLAGS)
LIBS        := $(DEP_LIBS) -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

SERVICES  := $(notdir $(patsubst %/,%,$(wildcard services/*/)))
LIB_SRC   := $(wildcard libshop/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_A     := $(BUILD)/lib/libshop.a
SVC_BINS  := $(SERVICES:%=$(BUILD)/bin/%)
MULTI     := $(BUILD)/bin/roboshop
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC  := $(wildcard tools/*.c)
TOOL_BINS := $(TOOL_SRC:tools/%.c=$(BUILD)/bin/shop-%)
VERSION_H := $(BUILD)/gen/shop_version.h

.PHONY: all services unit tools run stop status demo-async test coverage install clean distclean format format-check dist bench load images
.DEFAULT_GOAL := all
.SECONDARY:

all: services unit tools
services: $(MULTI) $(SVC_BINS)
unit: $(UNIT_BINS)
tools: $(TOOL_BINS)

# The version header is rewritten only when VERSION changes, so builds stay incremental.
$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@echo '#define SHOP_VERSION "$(VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

$(BUILD)/obj/%.o: %.c $(DEPS_MK) | $(VERSION_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Every service is linked into one multi-call binary, $(MULTI) (services/roboshop.c dispatches on the
# program's name), and $(BUILD)/bin/<svc> are hard links to it: one file, so the services of one host share
# its pages (the library code above all) as they shared the libraries' when those were shared objects.
MULTI_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/*.c services/*/*.c))

$(MULTI): $(MULTI_OBJ) $(LIB_A) $(DEP_FILES)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(MULTI_OBJ) $(LIB_A) $(LIBS)

$(SVC_BINS): $(BUILD)/bin/%: $(MULTI)
	$(Q)ln -f $< $@

$(BUILD)/bin/shop-%: $(BUILD)/obj/tools/%.o $(LIB_A) $(DEP_FILES)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_A) $(DEP_FILES)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(LIBS)

run: all
	deploy/local/stack start

stop:
	deploy/local/stack stop

# The asynchronous lesson (docs/COURSE.md): orders wait in the queue while dispatch is offline, then drain.
demo-async: all
	deploy/local/demo-async

status:
	deploy/local/stack status

test:
	tests/run

# Line and branch coverage over the unit and contract suites (build/cov, a private stack in .state-cov/).
coverage:
	tests/coverage/measure

# Release archives per service and the web bundle (deploy/dist), benchmarks, load generator.
dist: all
	BUILD=$(BUILD) ARCH=$(ARCH) deploy/dist $(VERSION)

# OCI images of every service, the web tier, the backends and the seed Job: build/images/<name>.tar
# (tools/images/build, docs/KUBERNETES.md). `make images IMAGES="catalogue web"` builds only those.
images: services tools
	BUILD=$(BUILD) VERSION=$(VERSION) tools/images/build $(IMAGES)

bench: all
	bench/run

load:
	bench/load/run

install: services tools
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(MULTI) $(DESTDIR)$(PREFIX)/bin/roboshop
	for s in $(SERVICES); do ln -f $(DESTDIR)$(PREFIX)/bin/roboshop $(DESTDIR)$(PREFIX)/bin/roboshop-$$s; done
	for t in $(TOOL_BINS); do install -m 0755 $$t $(DESTDIR)$(PREFIX)/bin/; done

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null; find libshop services tests tools -name '*.[ch]' 2>/dev/null)
format:
	clang-format -i $(sort $(C_FILES))
format-check:
	clang-format --dry-run -Werror $(sort $(C_FILES))

# clean keeps build/deps*; distclean removes them (the lean libraries stay cached in
# /var/cache/roboshop/deps, see deps/build).
clean:
	rm -rf $(filter-out build/deps%,$(wildcard build/*))

distclean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# libFuzzer harnesses: make fuzz-build, make fuzz
include tests/fuzz/fuzz.mk
