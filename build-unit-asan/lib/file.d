build-unit-asan/lib/file.o: lib/file.c lib/file.h lib/err.h
lib/file.h:
lib/err.h:
