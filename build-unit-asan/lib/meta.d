build-unit-asan/lib/meta.o: lib/meta.c lib/meta.h lib/err.h lib/schema.h
lib/meta.h:
lib/err.h:
lib/schema.h:
