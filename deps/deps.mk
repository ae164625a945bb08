# deps/deps.mk - included by the Makefiles: every library the shop links, as deps/build provides them
# (DEPS=auto: lean static builds from Debian's source packages, else the system's shared libraries;
# DEPS=lean fails instead of falling back; DEPS=system always uses the system's). Sets DEP_CFLAGS,
# DEP_LIBS and DEP_FILES (the archives a binary must be relinked after).
DEPS     ?= auto
DEPS_DIR := build/deps$(if $(filter-out amd64,$(ARCH)),-$(ARCH))
DEPS_MK  := $(DEPS_DIR)/$(DEPS).mk

$(DEPS_MK): deps/build $(wildcard deps/patches/*.patch)
	@ARCH=$(ARCH) deps/build $(DEPS) $(DEPS_DIR)

include $(DEPS_MK)

# An archive removed by hand is built again.
$(DEP_FILES):
	@rm -f $(DEPS_MK) && ARCH=$(ARCH) deps/build $(DEPS) $(DEPS_DIR)
