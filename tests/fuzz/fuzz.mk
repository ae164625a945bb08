# tests/fuzz/fuzz.mk - libFuzzer harnesses (included by the Makefile). Each tests/fuzz/fuzz_<name>.c
# is linked with the libshop and service sources it needs, compiled by clang with the fuzzer's
# coverage and ASan+UBSan, into build/fuzz/bin/fuzz_<name>. `make fuzz-build` builds them;
# `make fuzz` runs each for FUZZ_SECONDS (default 300) through tests/fuzz/run, which `make test`
# also runs, briefly. Corpora: tests/fuzz/corpus/<name>/.

FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 300
FUZZ_DIR     := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# -Wno-format-nonliteral: clang also flags the vprintf-style wrappers, whose callers gcc checks.
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) \
                -fsanitize=fuzzer-no-link $(WARN) -Wno-format-nonliteral -pthread -MMD -MP \
                -I. -I$(BUILD)/gen $(PKG_CFLAGS)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/bin/%)
# What every harness may link: the libshop modules with no backend, and the services' pure parts.
FUZZ_LIB_SRC := libshop/util.c libshop/json.c libshop/http.c libshop/router.c libshop/body.c \
                libshop/http_metrics.c libshop/server.c libshop/service.c libshop/err.c \
                libshop/conf.c libshop/log.c libshop/metrics.c libshop/client.c libshop/curlrun.c libshop/trace.c \
                libshop/random.c libshop/sdnotify.c libshop/castore.c libshop/loop.c libshop/coswitch.c \
                services/cart/cartcheck.c services/cart/cartcalc.c services/dispatch/work.c \
                services/payment/order.c services/payment/idem.c services/catalogue/search.c services/shipping/calc.c \
                services/ratings/ratecalc.c
FUZZ_LIB_A   := $(FUZZ_DIR)/lib/libfuzzshop.a

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run

$(FUZZ_DIR)/obj/%.o: %.c $(DEPS_MK) | $(VERSION_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

# Rebuilt when this file changes: with .SECONDARY, an object added to the list is otherwise
# not built while the archive is newer than its source.
$(FUZZ_LIB_A): $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(FUZZ_DIR)/bin/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_LIB_A) $(DEP_FILES)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -pthread -o $@ $< $(FUZZ_LIB_A) $(LIBS)

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
