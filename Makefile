# Build, install and test haematite with PGXS.
#
#   make && make install     build the module and install it into the server
#                            that pg_config names
#   make installcheck        run the pg_regress and isolation suites against a
#                            running server (PGHOST, PGPORT, PGUSER as usual)
#   make dist                write haematite-<version>.zip for PGXN: the
#                            committed tree (git archive of HEAD) under a
#                            haematite-<version>/ prefix, plus META.json
#   make META.json           generate META.json from META.json.in
#
# The version is written in one place, default_version in haematite.control.
# EXTVERSION below is read from there, and META.json, which is not kept in
# git, gets it when it is generated from META.json.in (@EXTVERSION@).
#
# scripts/test.sh runs every suite, pgTAP included, on a throwaway cluster.

MODULE_big = haematite
OBJS = \
	src/haematite.o \
	src/errors.o \
	src/streams.o \
	src/reads.o \
	src/scalar_values.o \
	src/expiry.o \
	src/flush.o \
	src/worker.o

EXTENSION = haematite
DATA = haematite--0.1.0.sql haematite--0.1.0--0.2.0.sql
PGFILEDESC = "haematite - an event store inside PostgreSQL"

# One regression file per topic in sql/, one isolation spec per race in
# test/isolation/specs/; both lists are taken from the directories.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation

# Messages show a key as text only when its bytes are valid in the database
# encoding, so the expected output assumes a UTF8 database.
REGRESS_OPTS = --encoding=UTF8 --no-locale

PG_CPPFLAGS = -Isrc
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror=implicit-function-declaration

EXTVERSION := $(shell sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)
ifeq ($(EXTVERSION),)
$(error could not read default_version from $(EXTENSION).control)
endif
DISTNAME = $(EXTENSION)-$(EXTVERSION)
EXTRA_CLEAN = META.json $(EXTENSION)-*.zip

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Release packaging.  These rules come after the PGXS include, so that "all"
# stays the default target.

META.json: META.json.in $(EXTENSION).control
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' META.json.in > $@

# The archive holds what HEAD holds, so a tracked file changed in the work
# tree would be missing from it, and META.json could carry another version
# than the archived control file.  Fail then.
dist: META.json
	@if [ -n "$$(git status --porcelain --untracked-files=no)" ]; then \
		echo "make dist: the work tree has uncommitted changes. Commit them first, because the archive is made from HEAD." >&2; \
		exit 1; \
	fi
	git archive --format=zip --prefix=$(DISTNAME)/ --add-file=META.json \
		--output=$(DISTNAME).zip HEAD
	@echo "Wrote $(DISTNAME).zip"

.PHONY: dist
