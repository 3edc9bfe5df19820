build-unit-asan/lib/batch.o: lib/batch.c lib/batch.h lib/err.h \
 lib/schema.h lib/file.h
lib/batch.h:
lib/err.h:
lib/schema.h:
lib/file.h:
