build-unit-asan/t/unit/schema.o: t/unit/schema.c lib/schema.h lib/err.h
lib/schema.h:
lib/err.h:
