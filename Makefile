# Build, install and test haematite with PGXS.
#
#   make && make install     build the module and install it into the server
#                            that pg_config names
#   make installcheck        run the pg_regress and isolation suites against a
#                            running server (PGHOST, PGPORT, PGUSER as usual)
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

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
