build-unit-asan/lib/schema.o: lib/schema.c lib/schema.h lib/err.h
lib/schema.h:
lib/err.h:
