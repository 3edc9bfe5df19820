build-unit-asan/lib/store.o: lib/store.c lib/store.h lib/err.h lib/file.h
lib/store.h:
lib/err.h:
lib/file.h:
