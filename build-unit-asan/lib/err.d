build-unit-asan/lib/err.o: lib/err.c lib/err.h
lib/err.h:
